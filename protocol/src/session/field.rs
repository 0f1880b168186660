//! The twelve session fields of the design, and sets of them: each field has a switch under
//! `[sharing]`, and a field switched off is absent from everything that leaves the host.

use std::fmt;

/// One of the twelve fields a customer shares or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    SourceIp,
    SourcePort,
    DestinationIp,
    DestinationPort,
    VirtualSystem,
    Application,
    User,
    Url,
    Filename,
    EmailSender,
    EmailRecipient,
    EmailSubject,
}

impl Field {
    /// Every field, in the order of the design.
    pub const ALL: [Field; 12] = [
        Field::SourceIp,
        Field::SourcePort,
        Field::DestinationIp,
        Field::DestinationPort,
        Field::VirtualSystem,
        Field::Application,
        Field::User,
        Field::Url,
        Field::Filename,
        Field::EmailSender,
        Field::EmailRecipient,
        Field::EmailSubject,
    ];

    /// The field's switch under `[sharing]`.
    pub const fn name(self) -> &'static str {
        match self {
            Field::SourceIp => "source_ip",
            Field::SourcePort => "source_port",
            Field::DestinationIp => "destination_ip",
            Field::DestinationPort => "destination_port",
            Field::VirtualSystem => "virtual_system",
            Field::Application => "application",
            Field::User => "user",
            Field::Url => "url",
            Field::Filename => "filename",
            Field::EmailSender => "email_sender",
            Field::EmailRecipient => "email_recipient",
            Field::EmailSubject => "email_subject",
        }
    }

    /// The field whose switch is `name`.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of fields: the ones shared.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSet(u16);

impl FieldSet {
    /// Every field: what `[sharing]` is when it says nothing.
    pub const ALL: FieldSet = FieldSet((1 << Field::ALL.len()) - 1);
    /// No field.
    pub const NONE: FieldSet = FieldSet(0);

    pub const fn contains(self, field: Field) -> bool {
        self.0 & field.bit() != 0
    }

    /// Whether every one of `fields` is in the set.
    pub fn contains_all(self, fields: impl IntoIterator<Item = Field>) -> bool {
        fields.into_iter().all(|f| self.contains(f))
    }

    /// The set with `field` in it if `on`, else without it.
    #[must_use]
    pub const fn with(self, field: Field, on: bool) -> FieldSet {
        if on {
            FieldSet(self.0 | field.bit())
        } else {
            FieldSet(self.0 & !field.bit())
        }
    }

    /// The fields in the set, in the order of the design.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl Default for FieldSet {
    fn default() -> Self {
        FieldSet::ALL
    }
}

impl fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Field::name)).finish()
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(fields: I) -> Self {
        fields
            .into_iter()
            .fold(FieldSet::NONE, |set, f| set.with(f, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_one_name_and_one_bit() {
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
            assert!(FieldSet::ALL.contains(f) && !FieldSet::NONE.contains(f));
            let alone: FieldSet = [f].into_iter().collect();
            assert_eq!(alone.iter().collect::<Vec<_>>(), [f]);
            assert!(!FieldSet::ALL.with(f, false).contains(f));
        }
        assert_eq!(FieldSet::ALL.iter().count(), 12);
        assert_eq!(Field::from_name("urls"), None);
    }
}
