//! Store-supplied text on a terminal: a device or anyone who writes to the store chooses the
//! names, reasons and messages the portal prints, so every control character (escape
//! sequences that move the cursor, rewrite lines or set the window title, and the bidirectional
//! overrides that reorder what is shown) is replaced before it reaches stdout or stderr.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal: C0 and C1 controls, DEL, and the bidirectional
/// embeddings, overrides and isolates.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character replaced by U+FFFD (`�`).
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if is_unsafe(c) { '\u{FFFD}' } else { c })
            .collect(),
    )
}

/// JSON text `json` (as serde_json writes it) with every unsafe character in its strings
/// written as its `\uXXXX` escape: the same document, safe on a terminal. serde_json escapes
/// C0 controls in strings but leaves DEL, C1 controls and bidi overrides raw; outside strings
/// it writes ASCII, where a line break or tab is layout and stays.
pub fn json(json: &str) -> Cow<'_, str> {
    let escape = |c: char| is_unsafe(c) && !matches!(c, '\n' | '\t' | '\r');
    if !json.chars().any(escape) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if escape(c) {
            // Every unsafe character is in the Basic Multilingual Plane.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_overrides_never_reach_the_terminal() {
        assert_eq!(clean("lab-fw"), Cow::Borrowed("lab-fw"));
        let hostile = "name\u{1b}[2J\u{1b}]0;owned\u{7}\r\n\u{9b}31m\u{202e}gnp.exe\u{7f}";
        let shown = clean(hostile);
        assert!(shown.chars().all(|c| !is_unsafe(c)), "{shown:?}");
        assert!(shown.starts_with("name\u{FFFD}[2J"), "{shown:?}");
        assert!(shown.contains("gnp.exe"));
    }

    #[test]
    fn json_keeps_the_same_document_written_safely() {
        let value: std::collections::BTreeMap<&str, &str> =
            [("name", "a\u{1b}[31m\u{9b}\u{202e}b\u{7f}")].into();
        for raw in [
            serde_json::to_string(&value).unwrap(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            let safe = json(&raw);
            assert!(safe.chars().all(|c| !is_unsafe(c) || c == '\n'), "{safe}");
            let back: std::collections::BTreeMap<&str, String> =
                serde_json::from_str(&safe).unwrap();
            let back: std::collections::BTreeMap<&str, &str> =
                back.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(back, value);
        }
    }
}
