//! Internet messages (RFC 5322) as the mail protocols carry them, read line by line as they
//! stream (SMTP `DATA`, IMAP `APPEND` and `FETCH` literals, POP3 `RETR` and `TOP`): the
//! `Subject` (RFC 2047 decoded), the `From`, `To` and `Cc` addresses where no envelope gives
//! them, and the file names of MIME parts (`Content-Disposition` `filename`, `Content-Type`
//! `name`). Only the header being unfolded is held; a body line is looked at only as far as
//! telling a part header from its content.

use super::values::{filename_param, name_param};
use super::{Found, List, MAX_VALUE_LEN, clean};

/// Where a message is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Part {
    /// The message's own header block.
    #[default]
    Headers,
    /// The body: MIME part headers and content.
    Body,
}

/// The header a message reader is unfolding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Subject,
    From,
    /// `To` and `Cc`.
    Recipients,
    ContentType,
    ContentDisposition,
}

/// A message being read.
#[derive(Debug, Clone, Default)]
pub struct Message {
    part: Part,
    /// Whether `From`, `To` and `Cc` give the sender and recipients (no envelope did).
    addresses: bool,
    /// A header being unfolded, and its value so far.
    header: Option<(Header, String)>,
}

impl Message {
    /// A message whose sender and recipients come from its headers (`addresses`), or from an
    /// envelope read elsewhere.
    pub fn new(addresses: bool) -> Self {
        Message {
            addresses,
            ..Message::default()
        }
    }

    /// The message's next line (without its line end).
    pub fn line(&mut self, line: &[u8], found: &mut Found) {
        // Folded continuation of the header being read.
        if matches!(line.first(), Some(b' ' | b'\t'))
            && let Some((_, value)) = &mut self.header
        {
            if value.len() < MAX_VALUE_LEN {
                value.push(' ');
                value.push_str(String::from_utf8_lossy(line).trim());
            }
            return;
        }
        self.finish_header(found);
        if line.is_empty() {
            // The end of the message's headers; MIME part headers follow in the body.
            self.part = Part::Body;
            return;
        }
        // Most body lines are content (base64 has no colon): rejected without a copy.
        let Some(colon) = memchr::memchr(b':', line) else {
            return;
        };
        let name = line[..colon].trim_ascii();
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        let in_headers = self.part == Part::Headers;
        let header = if is("content-disposition") {
            Header::ContentDisposition
        } else if is("content-type") {
            Header::ContentType
        } else if in_headers && is("subject") {
            Header::Subject
        } else if in_headers && self.addresses && is("from") {
            Header::From
        } else if in_headers && self.addresses && (is("to") || is("cc")) {
            Header::Recipients
        } else {
            return;
        };
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_owned();
        self.header = Some((header, value));
    }

    /// The message ended: the header being unfolded is complete.
    pub fn end(&mut self, found: &mut Found) {
        self.finish_header(found);
    }

    fn finish_header(&mut self, found: &mut Found) {
        let Some((header, value)) = self.header.take() else {
            return;
        };
        let file = match header {
            Header::Subject => {
                found.set_subject(decode_words(&value));
                return;
            }
            Header::From => {
                if let Some(first) = addresses(&value).next() {
                    found.set_sender(first);
                }
                return;
            }
            Header::Recipients => {
                for address in addresses(&value) {
                    found.add(List::EmailRecipients, address);
                }
                return;
            }
            Header::ContentType => name_param(&value),
            Header::ContentDisposition => filename_param(&value),
        };
        if let Some(file) = file {
            found.add(List::Filenames, decode_words(&file));
        }
    }
}

/// The addresses of an address-list header (`Bob <bob@x>, "Doe, J" <j@x>, c@x`): what is inside
/// `<...>`, or the bare address, of each; display names and groups' names are left out.
pub fn addresses(value: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = value;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches([' ', ',', ';', '\t']);
            if rest.is_empty() {
                return None;
            }
            // One mailbox: up to a comma outside quotes and angle brackets.
            let (mut quoted, mut angle, mut end) = (false, false, rest.len());
            for (i, c) in rest.char_indices() {
                match c {
                    '"' if !angle => quoted = !quoted,
                    '<' if !quoted => angle = true,
                    '>' if !quoted => angle = false,
                    ',' | ';' if !quoted && !angle => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let mailbox = &rest[..end];
            rest = &rest[end..];
            // A group's name (`team: a@x, b@x;`) is not an address.
            let mailbox = match mailbox.find(':') {
                Some(colon)
                    if !mailbox[..colon].contains('<') && !mailbox[..colon].contains('@') =>
                {
                    &mailbox[colon + 1..]
                }
                _ => mailbox,
            };
            let address = match (mailbox.rfind('<'), mailbox.rfind('>')) {
                (Some(a), Some(b)) if a < b => &mailbox[a + 1..b],
                _ => mailbox.trim(),
            };
            if address.contains('@') {
                return Some(clean(address.as_bytes()));
            }
        }
    })
}

/// Decodes RFC 2047 encoded words (`=?UTF-8?B?...?=`); text without them stays as it is.
pub fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return clean(value.as_bytes());
    }
    match rfc2047_decoder::decode(value.as_bytes()) {
        Ok(decoded) => clean(decoded.as_bytes()),
        Err(_) => clean(value.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(message: &str, addresses: bool) -> Found {
        let mut found = Found::default();
        let mut m = Message::new(addresses);
        for line in message.split("\r\n") {
            m.line(line.as_bytes(), &mut found);
        }
        m.end(&mut found);
        found
    }

    #[test]
    fn headers_give_addresses_subject_and_attachments() {
        let f = read(
            "From: \"Doe, Bob\" <bob@lab.test>\r\nTo: alice@lab.test, Carol <carol@lab.test>\r\n\
Cc: team: dan@lab.test, erin@lab.test;\r\nSubject: Quarterly =?UTF-8?Q?r=C3=A9sults?=\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: application/pdf;\r\n name=\"q3.pdf\"\r\n\r\nFrom: not a header\r\nJVBE\r\n--b--",
            true,
        );
        assert_eq!(f.email_sender.as_deref(), Some("bob@lab.test"));
        assert_eq!(
            f.email_recipients,
            [
                "alice@lab.test",
                "carol@lab.test",
                "dan@lab.test",
                "erin@lab.test"
            ]
        );
        assert_eq!(f.email_subject.as_deref(), Some("Quarterly résults"));
        assert_eq!(f.filenames, ["q3.pdf"]);
        // With an envelope, the headers' addresses are not read.
        let f = read("From: bob@lab.test\r\nTo: a@lab.test\r\nSubject: s", false);
        assert_eq!((f.email_sender, f.email_recipients.len()), (None, 0));
        assert_eq!(f.email_subject.as_deref(), Some("s"));
    }

    #[test]
    fn odd_address_lists_give_only_addresses() {
        let all = |v: &str| addresses(v).collect::<Vec<_>>();
        assert_eq!(all("undisclosed-recipients:;"), Vec::<String>::new());
        assert_eq!(all("<a@x>"), ["a@x"]);
        assert_eq!(all("\"x, <y>\" <b@x>,,c@x"), ["b@x", "c@x"]);
        assert_eq!(all("no address here"), Vec::<String>::new());
        assert_eq!(all(""), Vec::<String>::new());
    }
}
