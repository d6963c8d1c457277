//! The reporter's personal data (诉求人): who sees what, and the masks (Reporter in
//! case.proto). Unmasked for the owning street and services; name and phone for a
//! department whose call has the contact shared; masks for everyone else, the district
//! included (need to know, not rank).

use super::model::Reporter;

/// How much of the reporter a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReporterView {
    /// Everything.
    Full,
    /// Name and phone; the id number masked.
    Contact,
    /// Masks only.
    Masked,
}

/// `张三` → `张*`: the surname only.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// `13812341234` → `138****1234`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    match chars.len() {
        0 => String::new(),
        n if n <= 4 => "*".repeat(n),
        n if n <= 7 => format!("{}{}", "*".repeat(n - 4), chars[n - 4..].iter().collect::<String>()),
        n => format!("{}****{}", chars[..3].iter().collect::<String>(), chars[n - 4..].iter().collect::<String>()),
    }
}

/// `420106199001011234` → `420106********1234`.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    match chars.len() {
        0 => String::new(),
        n if n <= 10 => "*".repeat(n),
        n => format!(
            "{}{}{}",
            chars[..6].iter().collect::<String>(),
            "*".repeat(n - 10),
            chars[n - 4..].iter().collect::<String>()
        ),
    }
}

/// The reporter as `view` allows; the flag says whether anything was masked.
pub fn present(reporter: &Reporter, view: ReporterView) -> (Reporter, bool) {
    match view {
        ReporterView::Full => (reporter.clone(), false),
        ReporterView::Contact => {
            let r = Reporter { id_number: mask_id_number(&reporter.id_number), ..reporter.clone() };
            let masked = !reporter.id_number.is_empty();
            (r, masked)
        }
        ReporterView::Masked => (
            Reporter {
                name: mask_name(&reporter.name),
                phone: mask_phone(&reporter.phone),
                id_number: mask_id_number(&reporter.id_number),
                confidential: reporter.confidential,
            },
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> Reporter {
        Reporter {
            name: "张三".into(),
            phone: "13812341234".into(),
            id_number: "420106199001011234".into(),
            confidential: false,
        }
    }

    #[test]
    fn masks_follow_the_contract() {
        let (masked, flag) = present(&reporter(), ReporterView::Masked);
        assert!(flag);
        assert_eq!(masked.name, "张*");
        assert_eq!(masked.phone, "138****1234");
        assert_eq!(masked.id_number, "420106********1234");
    }

    #[test]
    fn a_department_with_the_contact_sees_name_and_phone_only() {
        let (r, flag) = present(&reporter(), ReporterView::Contact);
        assert!(flag);
        assert_eq!((r.name.as_str(), r.phone.as_str()), ("张三", "13812341234"));
        assert_eq!(r.id_number, "420106********1234");
        assert_eq!(present(&reporter(), ReporterView::Full), (reporter(), false));
    }
}
