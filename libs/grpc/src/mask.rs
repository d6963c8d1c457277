//! Field masks on `Update` methods (AIP-134).

use crate::error::{ApiError, FieldViolations};

/// Which fields of a resource an update replaces: the mask's paths, each one of the fields
/// the method allows; without a mask (or an empty one), the fields the caller populated.
#[derive(Debug, Clone)]
pub struct UpdatePaths(Option<Vec<String>>);

impl UpdatePaths {
    /// Checks `mask` against `allowed`: an unknown or immutable path is INVALID_ARGUMENT on
    /// `update_mask`, naming what may be updated.
    pub fn new(mask: Option<&prost_types::FieldMask>, allowed: &[&str]) -> Result<Self, ApiError> {
        let Some(mask) = mask.filter(|m| !m.paths.is_empty()) else { return Ok(Self(None)) };
        let mut v = FieldViolations::new();
        for path in &mask.paths {
            if !allowed.contains(&path.as_str()) {
                v.add("update_mask", format!("`{path}` cannot be updated (allowed: {})", allowed.join(", ")));
            }
        }
        v.into_result()?;
        Ok(Self(Some(mask.paths.clone())))
    }

    /// Whether `field` is to be replaced; `populated` says whether the caller set it.
    pub fn wants(&self, field: &str, populated: bool) -> bool {
        match &self.0 {
            Some(paths) => paths.iter().any(|p| p == field),
            None => populated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_names_exactly_what_changes() {
        let mask = prost_types::FieldMask { paths: vec!["name".into()] };
        let paths = UpdatePaths::new(Some(&mask), &["name", "kind"]).unwrap();
        assert!(paths.wants("name", false));
        assert!(!paths.wants("kind", true));
    }

    #[test]
    fn without_a_mask_populated_fields_change() {
        let paths = UpdatePaths::new(None, &["name"]).unwrap();
        assert!(paths.wants("name", true));
        assert!(!paths.wants("name", false));
    }

    #[test]
    fn an_immutable_path_is_invalid_argument() {
        let mask = prost_types::FieldMask { paths: vec!["id".into()] };
        assert!(matches!(UpdatePaths::new(Some(&mask), &["name"]), Err(ApiError::InvalidArgument(_))));
    }
}
