//! Validated values, parsed once at the edge: a phone number, a MAC address, a product code, a
//! catalogue name, an extension number, and a point in time.
//!
//! Each text value has `parse(&str) -> Result<Self, ValueError>`, `as_str()`, `Display`, serde
//! as its text (deserialising through `parse`), and sqlx as TEXT on SQLite and PostgreSQL.
//! [`ValueError`]'s messages are the sentences the code gives today, so a caller maps any of
//! them to `400 invalidValue` unchanged.
//!
//! What sqlx `Decode` does with a stored value differs, on purpose:
//! - [`MacAddress`], [`ProductCode`]: decoding re-parses, so a row that breaks the rule is a
//!   decode error. The rules have not changed since the tables were created.
//! - [`E164Number`]: decoding checks only the E.164 shape (`+` and up to 15 digits), not the
//!   number plan: validity comes from the `phonenumber` crate's metadata, and a number that was
//!   valid when it was added must stay readable after an upgrade of that metadata.
//! - [`CatalogName`]: decoding trusts the database. The rule was tightened (control characters
//!   refused since commit 2b20d84) after rows could have been written, and a name is only shown
//!   and compared.
//! - [`ExtensionNumber`] and [`Micros`] are integers in the database (INTEGER / BIGINT).

use std::convert::Infallible;
use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a value was refused. Every message is the sentence a client is shown today with
/// `400 invalidValue` (`ScimError::invalid_value`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// `parse_e164` (`provisioning/domain.rs`): not a phone number at all.
    #[error("'{0}' is not a phone number in E.164 form (e.g. +33142868200)")]
    NotE164(String),
    /// `parse_e164`: a phone number, but not one its country's plan allows.
    #[error("'{0}' is not a valid phone number for its country")]
    InvalidNumber(String),
    /// `normalize_mac` (`provisioning/domain.rs`).
    #[error(
        "'{0}' is not a MAC address: 12 hexadecimal digits, optionally separated by ':', '-' or '.'"
    )]
    NotMac(String),
    /// `check_code` (`provisioning/catalog.rs`), for product codes and feature names alike.
    #[error("product code '{0}' must be 1 to 64 letters, digits, '-' or '_'")]
    ProductCode(String),
    /// `check_name` (`provisioning/catalog.rs`); `what` is e.g. "a role name".
    #[error(
        "{what} must be 1 to 128 characters, without control characters or leading or trailing spaces"
    )]
    Name { what: &'static str },
    /// The digit check of `parse_extension` (`provisioning/domain.rs`).
    #[error("extensionNumber '{0}' must be digits (or \"auto\" for the next free one)")]
    ExtensionDigits(String),
    /// An RFC 3339 date-time was expected. Today's two parsers word this with the name of what
    /// they parse (`since must be …` in `http/admin.rs`, a filter error in
    /// `store/filter_sql.rs`): they keep their own sentences and map this error to them.
    #[error("'{0}' is not an RFC 3339 date-time such as 2026-01-31T00:00:00Z")]
    NotRfc3339(String),
    /// `unknown_role` (`provisioning/domain.rs`): a `roles` value that is no role.
    #[error(
        "role '{0}' is not known: use account:superAdmin, account:admin, account:member, account:custom:<id>, or pbx:superAdministrator / pbx:configurePbx / pbx:viewInvoices / pbx:payInvoices / pbx:viewReports; GET /Roles lists them"
    )]
    UnknownRole(String),
}

/// Serialize as the text, deserialize through `parse`.
macro_rules! text_serde {
    ($ty:ident) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl TryFrom<String> for $ty {
            type Error = ValueError;

            fn try_from(text: String) -> Result<Self, ValueError> {
                $ty::parse(&text)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

/// A phone number valid for its country, in E.164 form (`+33142868200`): the primary key of
/// `phone_numbers.number` and the user's `directNumber`.
///
/// Replaces `parse_e164` (`provisioning/domain.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct E164Number(String);

impl E164Number {
    /// Any notation the `phonenumber` crate reads with a leading `+` and country code (spaces,
    /// dashes, dots, parentheses…), valid for its country, formatted as E.164.
    pub fn parse(number: &str) -> Result<Self, ValueError> {
        let parsed = phonenumber::parse(None, number)
            .map_err(|_| ValueError::NotE164(number.to_string()))?;
        if !parsed.is_valid() {
            return Err(ValueError::InvalidNumber(number.to_string()));
        }
        Ok(E164Number(
            parsed.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// A number read back from the database: only its E.164 shape is checked (`+`, then 1 to
    /// 15 digits, the first not 0), not the number plan, which changes with the crate's
    /// metadata. What sqlx `Decode` calls.
    pub fn from_stored(number: &str) -> Result<Self, ValueError> {
        let digits = number.strip_prefix('+').unwrap_or_default();
        let shaped = (1..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if shaped {
            Ok(E164Number(number.to_string()))
        } else {
            Err(ValueError::NotE164(number.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

text_serde!(E164Number);
sqlx_text!(E164Number, E164Number::from_stored);

/// A MAC address as 12 upper-case hex digits (`001A2B3C4D5E`): `devices.mac`, unique on the
/// platform.
///
/// Replaces `normalize_mac` (`provisioning/domain.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct MacAddress(String);

impl MacAddress {
    /// 12 hex digits in either case, optionally separated by ':', '-', '.' or ' ' anywhere
    /// (`00:1a:2b:3c:4d:5e`, `00-1A-2B-3C-4D-5E`, `001a.2b3c.4d5e`).
    pub fn parse(mac: &str) -> Result<Self, ValueError> {
        let hex: String = mac
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.' | ' '))
            .collect();
        if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ValueError::NotMac(mac.to_string()));
        }
        Ok(MacAddress(hex.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

text_serde!(MacAddress);
sqlx_text!(MacAddress, MacAddress::parse);

/// A product code (`phone`, `contact-center`), or a feature name of a product (`sms`): 1 to 64
/// ASCII letters, digits, '-' or '_' — so never a ':', which separates the two in a feature
/// entitlement (`phone:sms`). `products.code`, case-sensitive.
///
/// Replaces `check_code` (`provisioning/catalog.rs`), which checks feature names too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ProductCode(String);

impl ProductCode {
    pub fn parse(code: &str) -> Result<Self, ValueError> {
        let valid = !code.is_empty()
            && code.len() <= 64
            && code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(ProductCode(code.to_string()))
        } else {
            Err(ValueError::ProductCode(code.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

text_serde!(ProductCode);
sqlx_text!(ProductCode, ProductCode::parse);

/// The name of a catalogue item — a bundle, custom role, emergency location or template: 1 to
/// 128 characters, none a control character, no leading or trailing whitespace (as
/// `str::trim` sees it, so tabs and no-break spaces too). Unique per account; case-sensitive.
///
/// Replaces `check_name` (`provisioning/catalog.rs`). Decoding from the database does not
/// re-check (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct CatalogName(String);

impl CatalogName {
    /// Maximum length, in characters.
    pub const MAX_CHARS: usize = 128;

    /// [`CatalogName::parse_as`] with "a name" as what is named.
    pub fn parse(name: &str) -> Result<Self, ValueError> {
        CatalogName::parse_as(name, "a name")
    }

    /// As today's `check_name(name, what)`: `what` ("a bundle name", "a role name", "a location
    /// name", "a template name") begins the error message.
    pub fn parse_as(name: &str, what: &'static str) -> Result<Self, ValueError> {
        let trimmed = name.trim();
        if trimmed.is_empty()
            || trimmed.len() != name.len()
            || name.chars().count() > CatalogName::MAX_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ValueError::Name { what });
        }
        Ok(CatalogName(name.to_string()))
    }

    /// A name read back from the database, taken as it is. What sqlx `Decode` calls.
    pub fn from_stored(name: &str) -> Result<Self, Infallible> {
        Ok(CatalogName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

text_serde!(CatalogName);
sqlx_text!(CatalogName, CatalogName::from_stored);

/// A user's internal extension (`users.extension`, INTEGER): digits only, so never negative.
/// In SCIM it is the string `extensionNumber`; serde writes and reads it as that string.
///
/// Replaces the digit check of `parse_extension` (`provisioning/domain.rs`). The range check
/// is the account policy's: [`ExtensionNumber::within`] with `AccountPolicy::extension_first`
/// and `extension_last`. `"auto"` and the empty string (the next free number) are the
/// caller's to recognise before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ExtensionNumber(i64);

impl ExtensionNumber {
    /// ASCII digits only (no sign, no spaces), fitting an `i64`; leading zeros are dropped
    /// (`"0042"` is 42), as `str::parse` does today.
    pub fn parse(digits: &str) -> Result<Self, ValueError> {
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse::<i64>().ok())
            .flatten()
            .map(ExtensionNumber)
            .ok_or_else(|| ValueError::ExtensionDigits(digits.to_string()))
    }

    /// An extension from a number (`next_free_extension`, a stored row): `None` if negative.
    pub const fn new(number: i64) -> Option<Self> {
        if number >= 0 {
            Some(ExtensionNumber(number))
        } else {
            None
        }
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    /// Whether the extension lies in the range `first..=last` (the account's dial plan).
    pub const fn within(self, first: i64, last: i64) -> bool {
        first <= self.0 && self.0 <= last
    }
}

impl From<ExtensionNumber> for i64 {
    fn from(extension: ExtensionNumber) -> i64 {
        extension.0
    }
}

impl TryFrom<String> for ExtensionNumber {
    type Error = ValueError;

    fn try_from(digits: String) -> Result<Self, ValueError> {
        ExtensionNumber::parse(&digits)
    }
}

impl fmt::Display for ExtensionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl serde::Serialize for ExtensionNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<DB: sqlx::Database> sqlx::Type<DB> for ExtensionNumber
where
    i64: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for ExtensionNumber
where
    i64: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <i64 as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for ExtensionNumber
where
    i64: sqlx::Decode<'r, DB>,
{
    /// A negative stored extension is a decode error.
    fn decode(
        value: <DB as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        let number = <i64 as sqlx::Decode<'r, DB>>::decode(value)?;
        Ok(ExtensionNumber::new(number)
            .ok_or_else(|| ValueError::ExtensionDigits(number.to_string()))?)
    }
}

impl sqlx::postgres::PgHasArrayType for ExtensionNumber {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <i64 as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

/// A point in time, in microseconds since the Unix epoch (UTC): the unit of every stored time
/// (`created_at`, `expires_at`, `held_until`, …), INTEGER on SQLite and BIGINT on PostgreSQL,
/// a bare integer in serde. Microseconds keep comparisons exact and identical on both
/// databases.
///
/// Replaces `i64` times, `store::now_micros` ([`Micros::now`]), `render::timestamp`
/// ([`Micros::to_rfc3339`]), the RFC 3339 parsing of `micros` in `http/admin.rs` and of
/// `Kind::Micros` in `store/filter_sql.rs` ([`Micros::parse_rfc3339`]), and the `now + n *
/// DAY_MICROS` sums of `provisioning` ([`Micros::plus_days`] and friends, which saturate
/// instead of overflowing).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Micros(i64);

impl Micros {
    pub const PER_SECOND: i64 = 1_000_000;
    pub const PER_HOUR: i64 = 3_600 * Micros::PER_SECOND;
    pub const PER_DAY: i64 = 24 * Micros::PER_HOUR;

    /// Now, as `store::now_micros`.
    pub fn now() -> Self {
        Micros::from_nanos(OffsetDateTime::now_utc().unix_timestamp_nanos())
    }

    pub const fn from_micros(micros: i64) -> Self {
        Micros(micros)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Truncated towards zero to whole microseconds, as today (`nanos / 1_000`); saturating at
    /// the ends of `i64`, which no `OffsetDateTime` reaches.
    fn from_nanos(nanos: i128) -> Self {
        let micros = nanos / 1_000;
        Micros(i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX }))
    }

    /// An RFC 3339 date-time (`2026-01-31T00:00:00Z`, `2026-01-31T01:00:00.5+01:00`), as the
    /// admin API's `since` / `until` and the SCIM filters on `meta.created` /
    /// `meta.lastModified` read it; digits past the microsecond are dropped.
    pub fn parse_rfc3339(text: &str) -> Result<Self, ValueError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Micros::from_nanos(t.unix_timestamp_nanos()))
            .map_err(|_| ValueError::NotRfc3339(text.to_string()))
    }

    /// The RFC 3339 form in UTC (`2026-01-31T00:00:00.123456Z`; no fraction when it is zero),
    /// as `render::timestamp`: the SCIM `meta.created`, `meta.lastModified` and every time the
    /// APIs show. Empty outside the years 0000–9999, as today.
    pub fn to_rfc3339(self) -> String {
        self.try_to_rfc3339().unwrap_or_default()
    }

    /// [`Micros::to_rfc3339`], `None` outside the years 0000–9999.
    pub fn try_to_rfc3339(self) -> Option<String> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
    }

    pub const fn plus_micros(self, micros: i64) -> Self {
        Micros(self.0.saturating_add(micros))
    }

    pub const fn plus_seconds(self, seconds: i64) -> Self {
        self.plus_micros(seconds.saturating_mul(Micros::PER_SECOND))
    }

    /// E.g. `plus_hours(72)`, the number quarantine (`NUMBER_QUARANTINE_MICROS` today).
    pub const fn plus_hours(self, hours: i64) -> Self {
        self.plus_micros(hours.saturating_mul(Micros::PER_HOUR))
    }

    /// E.g. `plus_days(policy.quarantine_days)`, the deactivation hold (`now + quarantine_days
    /// * DAY_MICROS` today).
    pub const fn plus_days(self, days: i64) -> Self {
        self.plus_micros(days.saturating_mul(Micros::PER_DAY))
    }

    /// `self - earlier`, in microseconds (negative if `earlier` is later).
    pub const fn micros_since(self, earlier: Micros) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl From<i64> for Micros {
    fn from(micros: i64) -> Self {
        Micros(micros)
    }
}

impl From<Micros> for i64 {
    fn from(at: Micros) -> i64 {
        at.0
    }
}

impl fmt::Display for Micros {
    /// The RFC 3339 form; the bare number of microseconds outside the years 0000–9999.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_to_rfc3339() {
            Some(text) => f.write_str(&text),
            None => write!(f, "{}µs", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn e164_formats_and_refuses_like_parse_e164() {
        assert_eq!(
            E164Number::parse("+33 1 42 86 82 00").unwrap().as_str(),
            "+33142868200"
        );
        assert_eq!(
            E164Number::parse("+1 (650) 253-0000").unwrap().as_str(),
            "+16502530000"
        );
        assert_eq!(
            E164Number::parse("12345").unwrap_err().to_string(),
            "'12345' is not a phone number in E.164 form (e.g. +33142868200)"
        );
        assert_eq!(
            E164Number::parse("+999123").unwrap_err(),
            ValueError::NotE164("+999123".into())
        );
        assert_eq!(
            E164Number::parse("+33 1 23").unwrap_err().to_string(),
            "'+33 1 23' is not a valid phone number for its country"
        );
    }

    #[test]
    fn e164_from_stored_checks_the_shape_only() {
        assert!(E164Number::from_stored("+33142868200").is_ok());
        assert!(E164Number::from_stored("+999999").is_ok());
        for bad in [
            "",
            "+",
            "33142868200",
            "+33 142",
            "+0123",
            "+1234567890123456",
        ] {
            assert!(E164Number::from_stored(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mac_normalises_like_normalize_mac() {
        for input in [
            "00:1a:2b:3c:4d:5e",
            "00-1A-2B-3C-4D-5E",
            "001a.2b3c.4d5e",
            "00 1a 2b 3c 4d 5e",
            "001A2B3C4D5E",
        ] {
            assert_eq!(MacAddress::parse(input).unwrap().as_str(), "001A2B3C4D5E");
        }
        assert_eq!(
            MacAddress::parse("00:1a:2b:3c:4d").unwrap_err().to_string(),
            "'00:1a:2b:3c:4d' is not a MAC address: 12 hexadecimal digits, optionally separated by ':', '-' or '.'"
        );
        assert!(MacAddress::parse("00:1a:2b:3c:4d:5g").is_err());
        assert!(MacAddress::parse("00_1a_2b_3c_4d_5e").is_err());
        assert!(MacAddress::parse("").is_err());
    }

    #[test]
    fn product_codes_like_check_code() {
        for good in ["phone", "contact-center", "A_1", &"x".repeat(64)] {
            assert_eq!(ProductCode::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(
            ProductCode::parse("phone:sms").unwrap_err().to_string(),
            "product code 'phone:sms' must be 1 to 64 letters, digits, '-' or '_'"
        );
        for bad in ["", "with space", "é", &"x".repeat(65)] {
            assert!(ProductCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn catalog_names_like_check_name() {
        assert_eq!(CatalogName::parse("Paris HQ").unwrap().as_str(), "Paris HQ");
        assert!(CatalogName::parse(&"é".repeat(128)).is_ok());
        assert_eq!(
            CatalogName::parse_as(" Paris", "a location name")
                .unwrap_err()
                .to_string(),
            "a location name must be 1 to 128 characters, without control characters or leading or trailing spaces"
        );
        for bad in [
            "",
            "   ",
            "Paris ",
            "\tParis",
            "Paris\u{a0}",
            "Par\u{0}is",
            "Par\nis",
            "Par\u{7f}is",
            &"é".repeat(129),
        ] {
            assert!(CatalogName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            CatalogName::from_stored(" legacy\n").unwrap().as_str(),
            " legacy\n"
        );
    }

    #[test]
    fn extensions_like_parse_extension() {
        assert_eq!(ExtensionNumber::parse("1234").unwrap().get(), 1234);
        assert_eq!(ExtensionNumber::parse("0042").unwrap().get(), 42);
        assert_eq!(
            ExtensionNumber::parse("12a").unwrap_err().to_string(),
            "extensionNumber '12a' must be digits (or \"auto\" for the next free one)"
        );
        for bad in [
            "",
            "auto",
            "-1",
            "+1",
            " 1",
            "1 ",
            "99999999999999999999",
            "١٢",
        ] {
            assert!(ExtensionNumber::parse(bad).is_err(), "{bad}");
        }
        let ext = ExtensionNumber::parse("1000").unwrap();
        assert!(ext.within(1000, 9999));
        assert!(!ext.within(1001, 9999));
        assert!(!ext.within(100, 999));
        assert_eq!(ExtensionNumber::new(-1), None);
        assert_eq!(
            serde_json::to_value(ext).unwrap(),
            serde_json::json!("1000")
        );
        assert_eq!(
            serde_json::from_value::<ExtensionNumber>(serde_json::json!("1000")).unwrap(),
            ext
        );
        assert!(serde_json::from_value::<ExtensionNumber>(serde_json::json!(1000)).is_err());
    }

    #[test]
    fn micros_render_and_parse_like_today() {
        let at = Micros::from_micros(1_769_817_600_123_456);
        assert_eq!(at.to_rfc3339(), "2026-01-31T00:00:00.123456Z");
        assert_eq!(at.to_string(), "2026-01-31T00:00:00.123456Z");
        assert_eq!(
            Micros::from_micros(1_769_817_600_000_000).to_rfc3339(),
            "2026-01-31T00:00:00Z"
        );
        assert_eq!(Micros::parse_rfc3339("2026-01-31T00:00:00.123456Z"), Ok(at));
        assert_eq!(
            Micros::parse_rfc3339("2026-01-31T01:00:00.123456789+01:00"),
            Ok(at)
        );
        assert_eq!(
            Micros::parse_rfc3339("2026-01-31").unwrap_err().to_string(),
            "'2026-01-31' is not an RFC 3339 date-time such as 2026-01-31T00:00:00Z"
        );
        assert_eq!(Micros::from_micros(i64::MAX).to_rfc3339(), "");
        assert_eq!(
            Micros::from_micros(i64::MAX).to_string(),
            format!("{}µs", i64::MAX)
        );
        assert_eq!(Micros::from_micros(0).to_rfc3339(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn micros_arithmetic() {
        let at = Micros::from_micros(1_000);
        assert_eq!(
            at.plus_days(30).as_micros(),
            1_000 + 30 * 86_400 * 1_000_000
        );
        assert_eq!(
            at.plus_hours(72).as_micros(),
            1_000 + 72 * 3_600 * 1_000_000
        );
        assert_eq!(at.plus_seconds(2).as_micros(), 2_001_000);
        assert_eq!(at.plus_micros(-1_000), Micros::from_micros(0));
        assert_eq!(at.plus_days(i64::MAX), Micros::from_micros(i64::MAX));
        assert_eq!(at.plus_days(30).micros_since(at), 30 * Micros::PER_DAY);
        assert_eq!(Micros::from_micros(i64::MIN).micros_since(at), i64::MIN);
        let now = Micros::now();
        assert!(now > Micros::parse_rfc3339("2026-01-01T00:00:00Z").unwrap());
        assert_eq!(serde_json::to_value(at).unwrap(), serde_json::json!(1_000));
    }

    #[test]
    fn text_values_serialise_as_their_text_and_deserialise_through_parse() {
        let mac: MacAddress =
            serde_json::from_value(serde_json::json!("00:1a:2b:3c:4d:5e")).unwrap();
        assert_eq!(
            serde_json::to_value(&mac).unwrap(),
            serde_json::json!("001A2B3C4D5E")
        );
        let err = serde_json::from_value::<MacAddress>(serde_json::json!("nope")).unwrap_err();
        assert!(err.to_string().contains("is not a MAC address"), "{err}");
        assert!(serde_json::from_value::<CatalogName>(serde_json::json!(" x")).is_err());
        assert!(serde_json::from_value::<ProductCode>(serde_json::json!("a b")).is_err());
        let number: E164Number =
            serde_json::from_value(serde_json::json!("+33 1 42 86 82 00")).unwrap();
        assert_eq!(number.to_string(), "+33142868200");
    }

    #[tokio::test]
    async fn sqlite_round_trips_and_decode_rules() {
        let pool = crate::domain::tests::sqlite().await;
        sqlx::query(
            "CREATE TABLE t (n INTEGER PRIMARY KEY, number TEXT, mac TEXT, code TEXT, name TEXT,
             extension INTEGER, at INTEGER)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let number = E164Number::parse("+33 1 42 86 82 00").unwrap();
        let mac = MacAddress::parse("00:1a:2b:3c:4d:5e").unwrap();
        let code = ProductCode::parse("phone").unwrap();
        let name = CatalogName::parse("Paris HQ").unwrap();
        let extension = ExtensionNumber::parse("1001").unwrap();
        let at = Micros::from_micros(1_769_817_600_123_456);
        sqlx::query("INSERT INTO t VALUES (1, $1, $2, $3, $4, $5, $6)")
            .bind(&number)
            .bind(&mac)
            .bind(&code)
            .bind(&name)
            .bind(extension)
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
        let raw: (String, String, String, String, i64, i64) =
            sqlx::query_as("SELECT number, mac, code, name, extension, at FROM t")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(
            raw,
            (
                "+33142868200".into(),
                "001A2B3C4D5E".into(),
                "phone".into(),
                "Paris HQ".into(),
                1001,
                1_769_817_600_123_456
            )
        );
        #[allow(clippy::type_complexity)]
        let back: (
            E164Number,
            MacAddress,
            ProductCode,
            CatalogName,
            ExtensionNumber,
            Micros,
        ) = sqlx::query_as("SELECT number, mac, code, name, extension, at FROM t WHERE mac = $1")
            .bind(&mac)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(back, (number, mac, code, name, extension, at));

        sqlx::query("INSERT INTO t VALUES (2, '+999999', 'zz:zz', 'a b', ' legacy', -1, 0)")
            .execute(&pool)
            .await
            .unwrap();
        let stored: E164Number = sqlx::query_scalar("SELECT number FROM t WHERE n = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(stored.as_str(), "+999999");
        let name: CatalogName = sqlx::query_scalar("SELECT name FROM t WHERE n = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(name.as_str(), " legacy");
        let refused = [
            sqlx::query_scalar::<_, MacAddress>("SELECT mac FROM t WHERE n = 2")
                .fetch_one(&pool)
                .await
                .map(drop),
            sqlx::query_scalar::<_, ProductCode>("SELECT code FROM t WHERE n = 2")
                .fetch_one(&pool)
                .await
                .map(drop),
            sqlx::query_scalar::<_, ExtensionNumber>("SELECT extension FROM t WHERE n = 2")
                .fetch_one(&pool)
                .await
                .map(drop),
        ];
        for result in refused {
            let err = result.unwrap_err();
            assert!(matches!(err, sqlx::Error::ColumnDecode { .. }), "{err:?}");
        }
    }

    /// Numbers in usual notations, some valid, most not.
    fn phone_like() -> impl Strategy<Value = String> {
        let country = prop_oneof![
            Just("1"),
            Just("33"),
            Just("44"),
            Just("49"),
            Just("39"),
            Just("81"),
            Just("61"),
            Just("7"),
        ];
        (
            country,
            "[0-9]{4,12}",
            prop_oneof![Just(""), Just(" "), Just("-")],
        )
            .prop_map(|(cc, digits, sep)| {
                let (head, tail) = digits.split_at(digits.len() / 2);
                format!("+{cc}{sep}{head}{sep}{tail}")
            })
    }

    /// Numbers valid in their plan (UK mobiles, New York, Berlin, Rome with its kept leading
    /// zero), in the notation `(separator)`.
    fn valid_number() -> impl Strategy<Value = (String, String)> {
        let number = prop_oneof![
            ("7[1-5][0-9]{2}", "[0-9]{6}").prop_map(|(a, b)| ("44", a, b)),
            ("212[2-9]", "[0-9]{6}").prop_map(|(a, b)| ("1", a, b)),
            ("30[1-9]", "[0-9]{7}").prop_map(|(a, b)| ("49", a, b)),
            ("06[0-9]{3}", "[0-9]{5}").prop_map(|(a, b)| ("39", a, b)),
        ];
        let sep = prop_oneof![Just(""), Just(" "), Just("-"), Just(".")];
        (number, sep).prop_map(|((cc, head, tail), sep)| {
            (
                format!("+{cc}{sep}{head}{sep}{tail}"),
                format!("+{cc}{head}{tail}"),
            )
        })
    }

    proptest! {
        #[test]
        fn e164_valid_numbers_are_accepted_in_any_notation((input, e164) in valid_number()) {
            let number = E164Number::parse(&input);
            prop_assert_eq!(number.as_ref().map(E164Number::as_str), Ok(e164.as_str()));
        }

        #[test]
        fn e164_parse_never_panics(
            input in prop_oneof![any::<String>(), "[0-9+ #:*;=()./xXa-z\u{FF10}-\u{FF19}-]{0,24}"],
        ) {
            let _ = E164Number::parse(&input);
            let _ = E164Number::from_stored(&input);
        }

        #[test]
        fn e164_formatted_reparses_to_itself(
            input in prop_oneof![phone_like(), valid_number().prop_map(|(input, _)| input)],
        ) {
            if let Ok(number) = E164Number::parse(&input) {
                prop_assert_eq!(E164Number::parse(number.as_str()), Ok(number.clone()));
                prop_assert_eq!(E164Number::from_stored(number.as_str()), Ok(number));
            }
        }

        #[test]
        fn mac_accepted_is_12_upper_hex_and_idempotent(input in any::<String>()) {
            if let Ok(mac) = MacAddress::parse(&input) {
                prop_assert_eq!(mac.as_str().len(), 12);
                let upper_hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
                prop_assert!(mac.as_str().bytes().all(upper_hex));
                prop_assert_eq!(MacAddress::parse(mac.as_str()), Ok(mac));
            }
        }

        #[test]
        fn mac_any_notation_of_6_bytes_is_accepted(
            bytes in any::<[u8; 6]>(),
            sep in prop_oneof![Just(""), Just(":"), Just("-"), Just(" ")],
            lower in any::<bool>(),
        ) {
            let canonical: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
            let hex = if lower { canonical.to_ascii_lowercase() } else { canonical.clone() };
            let pairs: Vec<&str> = (0..6).map(|i| &hex[2 * i..2 * i + 2]).collect();
            let dotted = format!("{}.{}.{}", &hex[..4], &hex[4..8], &hex[8..]);
            for input in [pairs.join(sep), dotted] {
                let parsed = MacAddress::parse(&input).map(MacAddress::into_string);
                prop_assert_eq!(parsed, Ok(canonical.clone()));
            }
        }

        #[test]
        fn product_code_accepts_exactly_its_alphabet(input in any::<String>()) {
            let expected = (1..=64).contains(&input.len())
                && input.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            let parsed = ProductCode::parse(&input);
            prop_assert_eq!(parsed.is_ok(), expected);
            if let Ok(code) = parsed {
                prop_assert_eq!(ProductCode::parse(code.as_str()), Ok(code));
            }
        }

        #[test]
        fn product_code_from_alphabet(input in "[A-Za-z0-9_-]{1,64}") {
            prop_assert_eq!(ProductCode::parse(&input).map(ProductCode::into_string), Ok(input));
        }

        #[test]
        fn catalog_name_never_keeps_control_or_outer_spaces(input in any::<String>()) {
            if let Ok(name) = CatalogName::parse(&input) {
                prop_assert_eq!(name.as_str(), input.as_str());
                prop_assert!(!input.chars().any(char::is_control));
                prop_assert_eq!(input.trim(), input.as_str());
                prop_assert!((1..=128).contains(&input.chars().count()));
                prop_assert_eq!(CatalogName::parse(name.as_str()), Ok(name));
            }
        }

        #[test]
        fn catalog_name_with_a_control_character_is_refused(
            head in "[a-zA-Z ]{0,20}",
            control in prop::char::range('\u{0}', '\u{1f}'),
            tail in "[a-zA-Z ]{0,20}",
        ) {
            let name = format!("a{head}{control}{tail}z");
            prop_assert!(CatalogName::parse(&name).is_err());
        }

        #[test]
        fn catalog_name_plain_text_is_accepted(
            name in "[a-zA-Z0-9][a-zA-Z0-9 ,.'()-]{0,126}[a-zA-Z0-9]",
        ) {
            prop_assert_eq!(CatalogName::parse(&name).map(CatalogName::into_string), Ok(name));
        }

        #[test]
        fn extension_round_trips_through_display(n in 0..=i64::MAX) {
            let ext = ExtensionNumber::parse(&n.to_string()).unwrap();
            prop_assert_eq!(ext.get(), n);
            prop_assert_eq!(ExtensionNumber::parse(&ext.to_string()), Ok(ext));
        }

        #[test]
        fn extension_accepts_only_digits(input in any::<String>()) {
            if let Ok(ext) = ExtensionNumber::parse(&input) {
                prop_assert!(!input.is_empty() && input.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(ext.get() >= 0);
            }
        }

        #[test]
        fn extension_within_is_the_inclusive_range(
            n in 0..20_000i64,
            first in 0..20_000i64,
            last in 0..20_000i64,
        ) {
            let ext = ExtensionNumber::new(n).unwrap();
            prop_assert_eq!(ext.within(first, last), (first..=last).contains(&n));
        }

        #[test]
        fn micros_rfc3339_round_trips(
            // 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z
            micros in -62_135_596_800_000_000i64..=253_402_300_799_999_999i64,
        ) {
            let at = Micros::from_micros(micros);
            let text = at.to_rfc3339();
            prop_assert!(text.ends_with('Z'), "{}", text);
            prop_assert_eq!(Micros::parse_rfc3339(&text), Ok(at));
        }

        #[test]
        fn micros_parse_never_panics(input in any::<String>()) {
            let _ = Micros::parse_rfc3339(&input);
        }

        #[test]
        fn micros_arithmetic_never_panics(micros in any::<i64>(), n in any::<i64>()) {
            let at = Micros::from_micros(micros);
            let _ = (at.plus_days(n), at.plus_hours(n), at.plus_seconds(n), at.plus_micros(n));
            let _ = at.micros_since(Micros::from_micros(n));
            let _ = at.to_string();
        }
    }
}
