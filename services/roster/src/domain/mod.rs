//! The roster's rules, free of I/O: what a valid street, station or person is, how a point
//! is placed in the district, who may see a phone number, and who may change what.

pub mod area;
pub mod policy;
pub mod validate;

pub use area::{Area, GeoPoint};

/// `13812341234` → `138****1234`: enough to recognise, not enough to call.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    match chars.len() {
        0 => String::new(),
        n if n <= 4 => "*".repeat(n),
        n if n <= 7 => format!("{}{}", "*".repeat(n - 4), chars[n - 4..].iter().collect::<String>()),
        n => format!("{}****{}", chars[..3].iter().collect::<String>(), chars[n - 4..].iter().collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mobile_number_keeps_its_prefix_and_last_four_digits() {
        assert_eq!(mask_phone("13812341234"), "138****1234");
        assert_eq!(mask_phone("027-8888"), "027****8888");
        assert_eq!(mask_phone("12345"), "*2345");
        assert_eq!(mask_phone(""), "");
    }
}
