//! The dispatch catalogue (派单目录): the matters the call procedure is for, in the four
//! classes the seed names (城市综合管理、服务市场主体、民生社会保障、应急突发事件), each
//! category with the departments to call by default, its default urgency and its sign and
//! check-in deadlines.
//!
//! The district publishes whole versions; a version never changes once published. Intake
//! accepts a category only from the current version and copies that category's rule into
//! the case ([`CaseRule`]), so a case keeps the deadlines it was accepted under whatever is
//! published later.

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, Utc};
use minhu_grpc::{ApiError, FieldViolations};
use serde::{Deserialize, Serialize};

use super::{
    deadlines::DeadlinePolicy,
    model::{Actor, Urgency},
    named_enum,
};

named_enum! {
    /// The four classes of matters a street calls departments for (派单事项类别).
    MatterClass {
        /// 城市综合管理.
        CityManagement = "MATTER_CLASS_CITY_MANAGEMENT",
        /// 服务市场主体.
        MarketEntityServices = "MATTER_CLASS_MARKET_ENTITY_SERVICES",
        /// 民生社会保障.
        LivelihoodSocialSecurity = "MATTER_CLASS_LIVELIHOOD_SOCIAL_SECURITY",
        /// 应急突发事件.
        Emergency = "MATTER_CLASS_EMERGENCY",
    }
}

/// Longest sign time a category may set (a week).
pub const MAX_SIGN_MINUTES: u32 = 7 * 24 * 60;
/// Longest check-in window a category may set (a day).
pub const MAX_CHECK_IN_MINUTES: u32 = 24 * 60;

/// One category of the catalogue (诉求分类).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueCategory {
    /// What cases carry in `category`, e.g. `城市管理/违法建设`; unique in a version.
    pub code: String,
    /// Its name for people.
    pub name: String,
    /// Its class.
    pub matter_class: MatterClass,
    /// Departments called by default (roster ids), in call order.
    pub department_ids: Vec<String>,
    /// Urgency when intake names none.
    pub default_urgency: Urgency,
    /// Time to sign a call (签收时限), minutes; 0: the configured time for the case's
    /// urgency.
    pub sign_minutes: u32,
    /// From report time to the close of check-in (报到), minutes; 0: the configured window.
    pub check_in_window_minutes: u32,
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    /// 1, 2, …
    pub version: i32,
    /// The categories, as published.
    pub categories: Vec<CatalogueCategory>,
    /// What changed and why.
    pub note: String,
    /// Who published it.
    pub published_by: Actor,
    /// When.
    pub publish_time: DateTime<Utc>,
}

/// What a case keeps of its category: the version it was accepted under and the rules it
/// is handled by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRule {
    /// The catalogue version.
    pub version: i32,
    /// The class.
    pub matter_class: MatterClass,
    /// Departments called by default.
    pub department_ids: Vec<String>,
    /// The category's name.
    pub category_name: String,
    /// Sign time, minutes; 0: the configured one.
    pub sign_minutes: u32,
    /// Check-in window, minutes; 0: the configured one.
    pub check_in_window_minutes: u32,
}

impl Catalogue {
    /// The category `code`, if this version has it.
    pub fn category(&self, code: &str) -> Option<&CatalogueCategory> {
        self.categories.iter().find(|c| c.code == code)
    }

    /// What a case of category `code` accepted now keeps, or the INVALID_ARGUMENT on
    /// `field` (naming only the version: the catalogue is public through GetCatalogue).
    pub fn accept(&self, field: &str, code: &str) -> Result<CaseRule, ApiError> {
        let Some(c) = self.category(code) else {
            return Err(ApiError::field(
                field,
                format!(
                    "is not a category of the dispatch catalogue (派单目录) version {}; see GetCatalogue",
                    self.version
                ),
            ));
        };
        Ok(CaseRule {
            version: self.version,
            matter_class: c.matter_class,
            department_ids: c.department_ids.clone(),
            category_name: c.name.clone(),
            sign_minutes: c.sign_minutes,
            check_in_window_minutes: c.check_in_window_minutes,
        })
    }
}

/// Checks a version to publish: at least one category; each with a code (unique), a name,
/// a class, at least one department (no repeats), and sign and check-in times within their
/// limits (0 keeps the configured default). Violations name `categories[i].field`.
pub fn validate(categories: &[CatalogueCategory]) -> Result<(), ApiError> {
    let mut v = FieldViolations::new();
    v.check(!categories.is_empty(), "catalogue.categories", "must hold at least one category");
    let mut codes = HashSet::new();
    for (i, c) in categories.iter().enumerate() {
        let f = |name: &str| format!("catalogue.categories[{i}].{name}");
        if v.required_text(&f("code"), &c.code, 100).is_empty() {
        } else if !codes.insert(c.code.trim()) {
            v.add(f("code"), "appears twice");
        }
        v.required_text(&f("name"), &c.name, 100);
        v.check(!c.department_ids.is_empty(), &f("department_ids"), "must name at least one department");
        let mut seen = HashSet::new();
        for (j, d) in c.department_ids.iter().enumerate() {
            let field = format!("catalogue.categories[{i}].department_ids[{j}]");
            if v.required_text(&field, d, 64).is_empty() {
            } else if !seen.insert(d.trim()) {
                v.add(field, "appears twice");
            }
        }
        v.check(c.sign_minutes <= MAX_SIGN_MINUTES, &f("sign_minutes"), "must be at most 10080 (0: the default)");
        v.check(
            c.check_in_window_minutes <= MAX_CHECK_IN_MINUTES,
            &f("check_in_window_minutes"),
            "must be at most 1440 (0: the default)",
        );
    }
    v.into_result()
}

impl DeadlinePolicy {
    /// The policy a case is handled by: its category's sign and check-in times where its
    /// rule sets them, the configured ones elsewhere (and for cases from before the
    /// catalogue).
    pub fn under(&self, rule: Option<&CaseRule>) -> DeadlinePolicy {
        let mut policy = self.clone();
        let Some(rule) = rule else { return policy };
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        if rule.sign_minutes > 0 {
            let sign = minutes(rule.sign_minutes);
            (policy.sign_emergency, policy.sign_urgent, policy.sign_normal) = (sign, sign, sign);
        }
        if rule.check_in_window_minutes > 0 {
            policy.check_in_window = minutes(rule.check_in_window_minutes);
        }
        policy
    }
}

/// The catalogue every district starts with (version 1): the seed's pump-room matters
/// (违法建设/开墙打洞, 无照经营, 占用公共空间, 房屋权属) and the common ones of each class,
/// with the configured deadlines (the district sets its own in later versions).
pub fn seed() -> Vec<CatalogueCategory> {
    use MatterClass::*;
    use Urgency::{Normal, Urgent};
    let c = |code: &str, name: &str, class, departments: &[&str], urgency, sign, check_in| CatalogueCategory {
        code: code.into(),
        name: name.into(),
        matter_class: class,
        department_ids: departments.iter().map(|d| (*d).into()).collect(),
        default_urgency: urgency,
        sign_minutes: sign,
        check_in_window_minutes: check_in,
    };
    vec![
        c(
            "城市管理/违法建设",
            "违法建设、开墙打洞",
            CityManagement,
            &["chengguan", "guihua", "fangguan"],
            Normal,
            0,
            0,
        ),
        c("城市管理/占道经营", "占道经营、出店经营", CityManagement, &["chengguan", "shichang"], Normal, 0, 0),
        c(
            "城市管理/侵占公共空间",
            "侵占公共空间、公共设施",
            CityManagement,
            &["chengguan", "gongan", "guihua"],
            Normal,
            0,
            0,
        ),
        c("城市管理/市容环境", "市容环境卫生", CityManagement, &["chengguan"], Normal, 0, 0),
        c("市场监管/无照经营", "无照经营", MarketEntityServices, &["shichang", "chengguan"], Normal, 0, 0),
        c("市场监管/食品安全", "食品安全", MarketEntityServices, &["shichang"], Urgent, 0, 0),
        c("营商服务/企业诉求", "企业生产经营诉求", MarketEntityServices, &["shichang", "guihua"], Normal, 0, 0),
        c("房屋安全/危房", "房屋安全隐患、危房", LivelihoodSocialSecurity, &["fangguan", "chengguan"], Urgent, 0, 0),
        c(
            "房屋管理/产权纠纷",
            "房屋及公共设施权属纠纷",
            LivelihoodSocialSecurity,
            &["fangguan", "guihua", "sifa"],
            Normal,
            0,
            0,
        ),
        c("社会治安/邻里纠纷", "邻里纠纷、矛盾调处", LivelihoodSocialSecurity, &["gongan", "sifa"], Normal, 0, 0),
        c(
            "应急突发/火灾隐患",
            "消防安全、火灾隐患",
            MatterClass::Emergency,
            &["xiaofang", "gongan"],
            Urgency::Emergency,
            0,
            0,
        ),
        c("应急突发/群体事件", "突发群体性事件", MatterClass::Emergency, &["gongan", "sifa"], Urgency::Emergency, 0, 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue {
            version: 1,
            categories: seed(),
            note: String::new(),
            published_by: Actor::dispatch_service(),
            publish_time: Utc::now(),
        }
    }

    #[test]
    fn the_seed_covers_the_four_classes_and_is_valid() {
        let seed = seed();
        assert!(validate(&seed).is_ok());
        for class in MatterClass::ALL {
            assert!(seed.iter().any(|c| c.matter_class == *class), "{class:?}");
        }
    }

    #[test]
    fn an_unknown_category_is_refused_on_the_field_and_a_known_one_keeps_its_rule() {
        let c = catalogue();
        assert!(c.accept("case.category", "城市管理/不存在").is_err());
        let mut rule = c.accept("case.category", "应急突发/火灾隐患").unwrap();
        assert_eq!((rule.version, rule.sign_minutes), (1, 0));
        assert_eq!(DeadlinePolicy::default().under(Some(&rule)), DeadlinePolicy::default());
        rule.sign_minutes = 10;
        let policy = DeadlinePolicy::default().under(Some(&rule));
        assert_eq!(policy.sign_normal, Duration::from_secs(10 * 60));
        assert_eq!(policy.check_in_window, DeadlinePolicy::default().check_in_window);
    }

    #[test]
    fn a_version_with_repeated_codes_or_no_departments_is_refused() {
        let mut bad = seed();
        bad[1].code = bad[0].code.clone();
        bad[2].department_ids.clear();
        bad[3].sign_minutes = MAX_SIGN_MINUTES + 1;
        assert!(validate(&bad).is_err());
    }
}
