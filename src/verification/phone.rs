//! Phone rules: parsing destinations to E.164, which number types may be called, caller-ID
//! normalization, pool patterns (single numbers and ranges), and masking for logs.

use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, PhoneNumber, Type};

use crate::error::AppError;

/// Longest destination input accepted, before any parsing.
const MAX_DESTINATION_LEN: usize = 32;
/// Longest caller-ID input accepted, before any parsing.
const MAX_CALLER_ID_LEN: usize = 64;
/// E.164 allows at most 15 digits after the `+`.
const MAX_E164_DIGITS: usize = 15;
/// Largest number of random trailing digits in a range.
const MAX_RANGE_DIGITS: u8 = 6;

/// Why a number or pattern was refused; the text is shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number must be in international format, starting with + and the country code")]
    NotInternational,
    #[error("phone number is too long")]
    TooLong,
    #[error("phone number may contain only digits, spaces, dashes, dots and parentheses")]
    InvalidCharacters,
    #[error("not a valid phone number")]
    Invalid,
    #[error("the number's country cannot be determined")]
    UnknownCountry,
    #[error("{0}")]
    InvalidPattern(String),
}

impl From<PhoneError> for AppError {
    fn from(err: PhoneError) -> Self {
        AppError::InvalidPhoneNumber(err.to_string())
    }
}

/// libphonenumber's number types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberType {
    FixedLine,
    Mobile,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    Unknown,
}

impl NumberType {
    fn of(kind: Type) -> Self {
        match kind {
            Type::FixedLine => Self::FixedLine,
            Type::Mobile => Self::Mobile,
            Type::FixedLineOrMobile => Self::FixedLineOrMobile,
            Type::TollFree => Self::TollFree,
            Type::PremiumRate => Self::PremiumRate,
            Type::SharedCost => Self::SharedCost,
            Type::Voip => Self::Voip,
            Type::PersonalNumber => Self::PersonalNumber,
            Type::Pager => Self::Pager,
            Type::Uan => Self::Uan,
            Type::Voicemail => Self::Voicemail,
            _ => Self::Unknown,
        }
    }

    /// Stored and shown name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FixedLine => "FIXED_LINE",
            Self::Mobile => "MOBILE",
            Self::FixedLineOrMobile => "FIXED_LINE_OR_MOBILE",
            Self::TollFree => "TOLL_FREE",
            Self::PremiumRate => "PREMIUM_RATE",
            Self::SharedCost => "SHARED_COST",
            Self::Voip => "VOIP",
            Self::PersonalNumber => "PERSONAL_NUMBER",
            Self::Pager => "PAGER",
            Self::Uan => "UAN",
            Self::Voicemail => "VOICEMAIL",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Only numbers that can run the app are called: fixed lines cannot, and premium rate,
    /// shared cost, personal, UAN, voicemail, pager, toll-free and unknown numbers invite toll
    /// fraud.
    pub const fn can_receive_flash_call(self) -> bool {
        matches!(self, Self::Mobile | Self::FixedLineOrMobile | Self::Voip)
    }
}

/// A destination parsed to E.164.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub e164: String,
    /// ISO 3166 alpha-2, uppercase.
    pub country: String,
    pub number_type: NumberType,
}

/// Strips the separators people type; None when anything else but digits and a leading `+`
/// remains.
fn strip_separators(input: &str) -> Option<String> {
    let mut out = String::with_capacity(input.len());
    for (i, c) in input.trim().chars().enumerate() {
        match c {
            '0'..='9' => out.push(c),
            '+' if i == 0 => out.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => return None,
        }
    }
    Some(out)
}

/// `00…` is the international prefix most of the world dials; treat it as `+`.
fn international(stripped: &str) -> Option<String> {
    if let Some(rest) = stripped.strip_prefix('+') {
        Some(format!("+{rest}"))
    } else {
        stripped.strip_prefix("00").map(|rest| format!("+{rest}"))
    }
}

fn e164(number: &PhoneNumber) -> String {
    number.format().mode(Mode::E164).to_string()
}

/// The number's country; for numbers outside any allocated range, the main country of its
/// calling code (a pool range may be unallocated in libphonenumber's data).
fn country_of(number: &PhoneNumber) -> Option<String> {
    if let Some(id) = number.country().id() {
        return Some(id.as_ref().to_owned());
    }
    let regions = DATABASE.by_code(&number.code().value())?;
    regions
        .iter()
        .find(|meta| meta.is_main_country_for_code())
        .or_else(|| regions.first())
        .map(|meta| meta.id().to_owned())
        .filter(|id| id.len() == 2)
}

/// Parses a destination given in international format.
pub fn parse_destination(input: &str) -> Result<Destination, PhoneError> {
    if input.len() > MAX_DESTINATION_LEN {
        return Err(PhoneError::TooLong);
    }
    let stripped = strip_separators(input).ok_or(PhoneError::InvalidCharacters)?;
    let full = international(&stripped).ok_or(PhoneError::NotInternational)?;
    let digits = full.len() - 1;
    if digits < 2 {
        return Err(PhoneError::Invalid);
    }
    if digits > MAX_E164_DIGITS {
        return Err(PhoneError::TooLong);
    }
    let number = phonenumber::parse(None, &full).map_err(|_| PhoneError::Invalid)?;
    if !number.is_valid() {
        return Err(PhoneError::Invalid);
    }
    let country = country_of(&number).ok_or(PhoneError::UnknownCountry)?;
    Ok(Destination {
        e164: e164(&number),
        country,
        number_type: NumberType::of(number.number_type(&DATABASE)),
    })
}

/// Turns the caller ID a phone showed into E.164: international (`+…`, `00…`) or national
/// format of the destination's country. Validity is not required (pool ranges may be
/// unallocated); None when the input is unusable.
pub fn normalize_caller_id(input: &str, destination_country: &str) -> Option<String> {
    if input.len() > MAX_CALLER_ID_LEN {
        return None;
    }
    let stripped = strip_separators(input)?;
    if stripped.is_empty() || stripped == "+" {
        return None;
    }
    let number = match international(&stripped) {
        Some(full) => phonenumber::parse(None, full).ok()?,
        None => {
            let region = destination_country
                .parse::<phonenumber::country::Id>()
                .ok()?;
            phonenumber::parse(Some(region), &stripped).ok()?
        }
    };
    let normalized = e164(&number);
    let digits = normalized.len().saturating_sub(1);
    (normalized.starts_with('+') && (2..=MAX_E164_DIGITS).contains(&digits)).then_some(normalized)
}

/// A pool entry: a single number (`random_digits == 0`) or a range whose last digits are
/// drawn per session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPattern {
    /// `+` and the fixed digits.
    pub prefix: String,
    pub random_digits: u8,
    /// ISO 3166 alpha-2 of the caller ID.
    pub country: String,
}

/// Parses `+14155550100` or `+467012300XX` (1–6 trailing X, any case).
pub fn parse_pool_pattern(input: &str) -> Result<PoolPattern, PhoneError> {
    let invalid = |why: &str| PhoneError::InvalidPattern(why.to_owned());
    let trimmed = input.trim();
    if trimmed.len() > 32 {
        return Err(invalid("a caller ID has at most 15 digits"));
    }
    let Some(body) = trimmed.strip_prefix('+') else {
        return Err(invalid(
            "a caller ID must start with + and the country code",
        ));
    };
    let fixed_len = body.find(['X', 'x']).unwrap_or(body.len());
    let (fixed, wildcards) = body.split_at(fixed_len);
    if fixed.is_empty() || !fixed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "a caller ID is digits, optionally ending in X for a range",
        ));
    }
    if !wildcards.bytes().all(|b| b == b'X' || b == b'x') {
        return Err(invalid("X may only stand at the end of a range"));
    }
    let random_digits = u8::try_from(wildcards.len()).map_err(|_| invalid("too many X"))?;
    if random_digits > MAX_RANGE_DIGITS {
        return Err(invalid("a range has at most 6 random digits (XXXXXX)"));
    }
    if fixed.len() + wildcards.len() > MAX_E164_DIGITS {
        return Err(invalid("a caller ID has at most 15 digits"));
    }
    if fixed.starts_with('0') {
        return Err(invalid("a country code never starts with 0"));
    }
    let sample = format!("+{fixed}{}", "0".repeat(wildcards.len()));
    let number = phonenumber::parse(None, &sample).map_err(|_| invalid("not a phone number"))?;
    let country = country_of(&number).ok_or(PhoneError::UnknownCountry)?;
    Ok(PoolPattern {
        prefix: format!("+{fixed}"),
        random_digits,
        country,
    })
}

impl PoolPattern {
    /// Canonical form: `+467012300XX`.
    pub fn pattern(&self) -> String {
        format!(
            "{}{}",
            self.prefix,
            "X".repeat(usize::from(self.random_digits))
        )
    }

    /// A caller ID from this entry, the random digits drawn uniformly.
    pub fn draw(&self, rng: &mut impl rand::Rng) -> String {
        let mut out = self.prefix.clone();
        for _ in 0..self.random_digits {
            let digit: u8 = rng.random_range(0..10);
            out.push(char::from(b'0' + digit));
        }
        out
    }

    /// How many caller IDs the entry can ring from.
    pub fn size(&self) -> u64 {
        10u64.pow(u32::from(self.random_digits))
    }

    /// Whether `e164` is one of this entry's caller IDs.
    pub fn matches(&self, e164: &str) -> bool {
        e164.strip_prefix(self.prefix.as_str()).is_some_and(|rest| {
            rest.len() == usize::from(self.random_digits)
                && rest.bytes().all(|b| b.is_ascii_digit())
        })
    }

    /// A regular-expression fragment, without anchors, matching this entry's caller IDs.
    pub fn regex(&self) -> String {
        let digits = &self.prefix[1..];
        match self.random_digits {
            0 => format!(r"\+{digits}"),
            n => format!(r"\+{digits}\d{{{n}}}"),
        }
    }
}

/// An anchored regular expression (ECMAScript, Java, ICU) matching every caller ID the pool can
/// ring from, so the app knows which call to intercept without learning which one was chosen.
pub fn caller_id_pattern<'a>(patterns: impl IntoIterator<Item = &'a PoolPattern>) -> String {
    let mut fragments: Vec<String> = patterns.into_iter().map(PoolPattern::regex).collect();
    fragments.sort();
    fragments.dedup();
    match fragments.as_slice() {
        [] => "^$".to_owned(),
        [one] => format!("^{one}$"),
        many => format!("^(?:{})$", many.join("|")),
    }
}

/// The chance that a blind guess verifies: attempts over caller IDs, at most 1.
pub fn guess_probability(max_attempts: u32, pool_size: u64) -> f64 {
    if pool_size == 0 {
        return 1.0;
    }
    (f64::from(max_attempts) / pool_size as f64).min(1.0)
}

/// A phone number for logs: `+`, the first 4 digits and the last 2; the rest masked.
pub fn mask_phone(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let (sign, digits) = match chars.split_first() {
        Some(('+', rest)) => ("+", rest),
        _ => ("", chars.as_slice()),
    };
    let keep_head = if digits.len() > 8 { 4 } else { 0 };
    let keep_tail = digits.len().min(2);
    let masked: String = digits
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_head || i >= digits.len() - keep_tail {
                *c
            } else {
                '*'
            }
        })
        .collect();
    format!("{sign}{masked}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn kind(input: &str) -> Result<NumberType, PhoneError> {
        parse_destination(input).map(|d| d.number_type)
    }

    #[test]
    fn parses_international_numbers_in_any_common_format() -> Result<(), PhoneError> {
        let uk = parse_destination("+44 7400 123456")?;
        assert_eq!(
            (uk.e164.as_str(), uk.country.as_str()),
            ("+447400123456", "GB")
        );
        assert_eq!(uk.number_type, NumberType::Mobile);
        let us = parse_destination("+1 (650) 253-0000")?;
        assert_eq!(
            (us.e164.as_str(), us.country.as_str()),
            ("+16502530000", "US")
        );
        assert_eq!(us.number_type, NumberType::FixedLineOrMobile);
        assert_eq!(parse_destination("0044.7400.123456")?.e164, "+447400123456");
        assert_eq!(
            parse_destination("+44 7700 900123"),
            Err(PhoneError::Invalid)
        );
        Ok(())
    }

    #[test]
    fn refuses_what_is_not_an_international_number() {
        assert_eq!(
            parse_destination("07700 900123"),
            Err(PhoneError::NotInternational)
        );
        assert_eq!(
            parse_destination("+44 7700 90012a"),
            Err(PhoneError::InvalidCharacters)
        );
        assert_eq!(
            parse_destination("").err(),
            Some(PhoneError::NotInternational)
        );
        assert_eq!(parse_destination("+"), Err(PhoneError::Invalid));
        assert_eq!(
            parse_destination("+1234567890123456"),
            Err(PhoneError::TooLong)
        );
        assert_eq!(
            parse_destination(&"+4".repeat(40)),
            Err(PhoneError::TooLong)
        );
        assert_eq!(parse_destination("+999123456789"), Err(PhoneError::Invalid));
        assert_eq!(parse_destination("+44 7700 9001"), Err(PhoneError::Invalid));
        assert!(parse_destination("+44 7700+900123").is_err());
    }

    #[test]
    fn classifies_risky_number_types() {
        assert_eq!(kind("+449098790000"), Ok(NumberType::PremiumRate));
        assert_eq!(kind("+34901123456"), Ok(NumberType::SharedCost));
        assert_eq!(kind("+41860123456789"), Ok(NumberType::Voicemail));
        assert_eq!(kind("+447640123456"), Ok(NumberType::Pager));
        assert_eq!(kind("+447012345678"), Ok(NumberType::PersonalNumber));
        assert_eq!(kind("+445512345678"), Ok(NumberType::Uan));
        assert_eq!(kind("+448001234567"), Ok(NumberType::TollFree));
        assert_eq!(kind("+441212345678"), Ok(NumberType::FixedLine));
        for risky in [
            "+449098790000",
            "+34901123456",
            "+41860123456789",
            "+447640123456",
            "+447012345678",
            "+445512345678",
            "+448001234567",
            "+441212345678",
        ] {
            assert!(
                !kind(risky).is_ok_and(NumberType::can_receive_flash_call),
                "{risky}"
            );
        }
        assert!(NumberType::Mobile.can_receive_flash_call());
        assert!(!NumberType::Voicemail.can_receive_flash_call());
        assert!(!NumberType::Unknown.can_receive_flash_call());
    }

    #[test]
    fn normalizes_caller_ids() {
        assert_eq!(
            normalize_caller_id("+1 415 555 0100", "GB").as_deref(),
            Some("+14155550100")
        );
        assert_eq!(
            normalize_caller_id("07700 900999", "GB").as_deref(),
            Some("+447700900999")
        );
        assert_eq!(
            normalize_caller_id("0046 70 123 0042", "GB").as_deref(),
            Some("+46701230042")
        );
        assert_eq!(
            normalize_caller_id("(415) 555-0100", "US").as_deref(),
            Some("+14155550100")
        );
        for garbage in [
            "",
            "+",
            "abc",
            "Unknown",
            "+1 415 555 0100 ext 2",
            &"1".repeat(70),
            "٤١٥",
        ] {
            assert_eq!(normalize_caller_id(garbage, "US"), None, "{garbage}");
        }
        assert_eq!(normalize_caller_id("4155550100", "ZZ"), None);
    }

    #[test]
    fn parses_pool_patterns() -> Result<(), PhoneError> {
        let single = parse_pool_pattern("+14155550100")?;
        assert_eq!(
            (
                single.prefix.as_str(),
                single.random_digits,
                single.country.as_str()
            ),
            ("+14155550100", 0, "US")
        );
        assert_eq!(single.pattern(), "+14155550100");
        let range = parse_pool_pattern(" +467012300xx ")?;
        assert_eq!(
            (
                range.prefix.as_str(),
                range.random_digits,
                range.country.as_str()
            ),
            ("+467012300", 2, "SE")
        );
        assert_eq!(range.pattern(), "+467012300XX");
        assert_eq!(range.size(), 100);
        for bad in [
            "14155550100",
            "+4670X12300",
            "+46701230XXXXXXX",
            "+",
            "+X",
            "+0123456",
            "+1234567890123456",
            "+46 70",
            "+99912345",
        ] {
            assert!(parse_pool_pattern(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn draws_stay_within_the_range() -> Result<(), PhoneError> {
        let range = parse_pool_pattern("+467012300XX")?;
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let drawn = range.draw(&mut rng);
            assert!(range.matches(&drawn), "{drawn}");
            assert_eq!(drawn.len(), 12);
            seen.insert(drawn);
        }
        assert!(seen.len() > 90, "draws cover the range: {}", seen.len());
        let single = parse_pool_pattern("+14155550100")?;
        assert_eq!(single.draw(&mut rng), "+14155550100");
        assert!(!range.matches("+4670123001"));
        assert!(!range.matches("+46701230012a"));
        Ok(())
    }

    #[test]
    fn caller_id_pattern_covers_the_pool_without_naming_the_choice() -> Result<(), PhoneError> {
        let a = parse_pool_pattern("+14155550100")?;
        let b = parse_pool_pattern("+467012300XX")?;
        let c = parse_pool_pattern("+447700900999")?;
        assert_eq!(caller_id_pattern([&a]), r"^\+14155550100$");
        assert_eq!(
            caller_id_pattern([&b, &a, &c, &a]),
            r"^(?:\+14155550100|\+447700900999|\+467012300\d{2})$"
        );
        assert_eq!(caller_id_pattern([]), "^$");
        Ok(())
    }

    #[test]
    fn guess_probability_is_attempts_over_pool_size() {
        assert_eq!(guess_probability(3, 1), 1.0);
        assert_eq!(guess_probability(3, 1000), 0.003);
        assert_eq!(guess_probability(3, 0), 1.0);
    }

    #[test]
    fn masks_phone_numbers() {
        assert_eq!(mask_phone("+447700900123"), "+4477******23");
        assert_eq!(mask_phone("+1234"), "+**34");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_phone("☎☎☎"), "*☎☎");
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let charset: Vec<char> = "0123456789+++  -().xX abcé☎٤\u{0}\u{202e}"
            .chars()
            .collect();
        let mut rng = StdRng::seed_from_u64(42);
        for _ in 0..10_000 {
            let len = rand::Rng::random_range(&mut rng, 0..40);
            let input: String = (0..len)
                .map(|_| charset[rand::Rng::random_range(&mut rng, 0..charset.len())])
                .collect();
            let _ = parse_destination(&input);
            let _ = normalize_caller_id(&input, "GB");
            let _ = parse_pool_pattern(&input);
            let _ = mask_phone(&input);
        }
    }
}
