//! A realistic district to run the demo and the tests on: Wuchang (武昌区), Wuhan — its
//! fourteen streets, the departments the 民呼我应 article names, a station of each kind in
//! every street, communities and grids, a few hundred people and the "resident + seat"
//! (常驻+席位) staffing of 中南路街's comprehensive law-enforcement centre.
//!
//! Every id is derived from stable codes (people's ids are UUIDv5 of their employee
//! numbers), and every insert skips what exists, so loading twice changes nothing.

use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::{
        Area, GeoPoint,
        policy::Membership,
        validate::{
            CommunityInput, DepartmentInput, GridInput, PersonInput, SecondmentInput, StationInput, StreetInput,
        },
    },
    error::RosterError,
    store::{history, organisations, people, structure},
};

/// The street of the seed article's pump-room case.
pub const ZHONGNANLU: &str = "zhongnanlu";
/// The community of the pump room (海运宿舍小区).
pub const HAIYUN: &str = "zhongnanlu-haiyun";

/// (code, name, latitude, longitude) of Wuchang's streets; centres approximate.
pub const STREETS: [(&str, &str, f64, f64); 14] = [
    ("baishazhou", "白沙洲街道", 30.5050, 114.3050),
    ("huanghelou", "黄鹤楼街道", 30.5450, 114.2990),
    ("jiyuqiao", "积玉桥街道", 30.5680, 114.3050),
    ("liangdao", "粮道街道", 30.5530, 114.3060),
    ("luojiashan", "珞珈山街道", 30.5380, 114.3620),
    ("nanhu", "南湖街道", 30.5100, 114.3350),
    ("shidong", "石洞街道", 30.5850, 114.3420),
    ("shouyilu", "首义路街道", 30.5370, 114.3110),
    ("shuiguohu", "水果湖街道", 30.5540, 114.3470),
    ("xujiapeng", "徐家棚街道", 30.5930, 114.3230),
    ("yangyuan", "杨园街道", 30.5760, 114.3300),
    ("zhonghualu", "中华路街道", 30.5560, 114.2950),
    ("zhongnanlu", "中南路街道", 30.5375, 114.3378),
    ("ziyang", "紫阳街道", 30.5350, 114.3000),
];

/// (code, name, kind) of the departments the article names, and two more.
pub const DEPARTMENTS: [(&str, &str, &str); 7] = [
    ("chengguan", "武昌区城管执法局", "DEPARTMENT_KIND_URBAN_MANAGEMENT"),
    ("fangguan", "武昌区房管局", "DEPARTMENT_KIND_HOUSING"),
    ("gongan", "武昌区公安分局", "DEPARTMENT_KIND_POLICE"),
    ("guihua", "武昌规划分局", "DEPARTMENT_KIND_PLANNING"),
    ("shichang", "武昌区市场监督管理局(市场秩序)", "DEPARTMENT_KIND_MARKET_SUPERVISION"),
    ("sifa", "武昌区司法局", "DEPARTMENT_KIND_JUSTICE"),
    ("xiaofang", "武昌区消防救援大队", "DEPARTMENT_KIND_FIRE"),
];

/// (department, station kind, name suffix, qualification of its officers) for the station
/// every street has of each.
const STATION_KINDS: [(&str, &str, &str, &str); 5] = [
    ("gongan", "STATION_KIND_POLICE_STATION", "派出所", "QUALIFICATION_POLICE_OFFICER"),
    ("sifa", "STATION_KIND_JUDICIAL_OFFICE", "司法所", "QUALIFICATION_PEOPLES_MEDIATOR"),
    (
        "shichang",
        "STATION_KIND_MARKET_SUPERVISION_OFFICE",
        "市场监督管理所",
        "QUALIFICATION_LAW_ENFORCEMENT_CERTIFICATE",
    ),
    ("chengguan", "STATION_KIND_URBAN_MANAGEMENT_SQUAD", "城管执法中队", "QUALIFICATION_LAW_ENFORCEMENT_CERTIFICATE"),
    ("fangguan", "STATION_KIND_HOUSING_OFFICE", "房管所", "QUALIFICATION_BUILDING_SAFETY_APPRAISER"),
];

/// (position, title) of each street's own staff, in employee-number order.
const STREET_STAFF: [(&str, &str); 7] = [
    ("POSITION_STREET_PRINCIPAL_LEADER", "街道党工委书记"),
    ("POSITION_STREET_LEADER_IN_CHARGE", "分管政法副书记"),
    ("POSITION_STREET_SECTION_HEAD", "民呼我应指挥调度中心主任"),
    ("POSITION_STREET_PRINCIPAL_LEADER", "街道办事处主任"),
    ("POSITION_STREET_LEADER_IN_CHARGE", "分管城市管理副主任"),
    ("POSITION_STREET_SECTION_HEAD", "平安办主任"),
    ("POSITION_STREET_SECTION_HEAD", "城管办主任"),
];

/// The lines of work of each street's leaders in charge, by staff index.
const LEADER_AREAS: [(usize, &[&str]); 2] = [
    (1, &["DEPARTMENT_KIND_POLICE", "DEPARTMENT_KIND_JUSTICE"]),
    (4, &["DEPARTMENT_KIND_URBAN_MANAGEMENT", "DEPARTMENT_KIND_MARKET_SUPERVISION", "DEPARTMENT_KIND_HOUSING"]),
];

/// (code suffix, name, head's staff index, departments whose stations it works closely with)
/// of each street's sections.
const SECTIONS: [(&str, &str, usize, &[&str]); 3] = [
    ("command", "民呼我应指挥调度中心", 2, &[]),
    ("pingan", "平安办(综治办)", 5, &["gongan", "sifa"]),
    ("chengguan", "城管办", 6, &["chengguan", "shichang", "fangguan"]),
];

/// The employee number of a street's staff member `index` (see [`STREET_STAFF`]).
pub fn staff_number(street_id: &str, index: usize) -> String {
    format!("{street_id}-staff-{index:02}")
}

/// Officers per station besides its head.
const OFFICERS_PER_STATION: usize = 3;

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马",
    "罗",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "磊", "强", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "华", "平", "刚",
    "桂英", "建国", "志强", "晓东", "海燕",
];

/// What a load did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    /// Records inserted.
    pub inserted: usize,
    /// Records already there, left alone.
    pub existing: usize,
}

impl SeedReport {
    fn count(&mut self, inserted: bool) {
        if inserted {
            self.inserted += 1;
        } else {
            self.existing += 1;
        }
    }
}

/// The id of the seed person with employee number `number` (stable across loads).
pub fn person_id(number: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("minhu-roster-seed/{number}").as_bytes())
}

/// The employee number of officer `index` (0 is the head) of the station `station_id`.
pub fn officer_number(station_id: &str, index: usize) -> String {
    format!("{station_id}-{index:02}")
}

fn name(seed: usize) -> String {
    format!("{}{}", SURNAMES[seed % SURNAMES.len()], GIVEN[(seed / SURNAMES.len() + seed * 7) % GIVEN.len()])
}

fn phone(seed: usize) -> String {
    format!("13{}{:08}", 5 + seed % 5, (seed * 7_919_993) % 100_000_000)
}

fn circle(lat: f64, lng: f64, radius_meters: f64) -> Area {
    Area { center: GeoPoint { lat, lng }, radius_meters, boundary: vec![] }
}

/// Loads the seed district into `pool` (migrated); returns what it did.
pub async fn load(pool: &PgPool) -> Result<SeedReport, RosterError> {
    let mut report = SeedReport::default();
    let mut tx = pool.begin().await?;
    let mut serial = 0usize;

    for (id, name, kind) in DEPARTMENTS {
        let input = DepartmentInput { id: id.into(), name: name.into(), kind: kind.into() };
        report.count(organisations::insert_department(&mut tx, &input).await?.is_some());
    }

    for (street_id, street_name, lat, lng) in STREETS {
        let street = StreetInput { id: street_id.into(), name: street_name.into(), area: circle(lat, lng, 1600.0) };
        report.count(structure::insert_street(&mut tx, &street).await?.is_some());

        // Two communities a street, two grids a community, each a little way off the centre.
        for (c, offset) in [(0usize, -0.004f64), (1, 0.004)] {
            let community_id =
                if street_id == ZHONGNANLU && c == 0 { HAIYUN.to_owned() } else { format!("{street_id}-c{}", c + 1) };
            let community_name = if community_id == HAIYUN {
                "海运社区".to_owned()
            } else {
                format!("{}第{}社区", street_name.trim_end_matches("街道"), c + 1)
            };
            let community = CommunityInput {
                id: community_id.clone(),
                street_id: street_id.into(),
                name: community_name.clone(),
                area: circle(lat + offset, lng, 800.0),
            };
            report.count(structure::insert_community(&mut tx, &community).await?.is_some());
            for (g, g_offset) in [(0usize, -0.002f64), (1, 0.002)] {
                let grid = GridInput {
                    id: format!("{community_id}-g{}", g + 1),
                    community_id: community_id.clone(),
                    name: format!("{community_name}第{}网格", g + 1),
                    area: circle(lat + offset, lng + g_offset, 400.0),
                    grid_workers: vec![],
                };
                report.count(structure::insert_grid(&mut tx, &grid, street_id).await?.is_some());
            }
        }

        // The street's own staff: its two principal leaders, two leaders in charge (政法;
        // 城管、市场、房管), and the heads of its command centre and two sections.
        for (i, (position, title)) in STREET_STAFF.into_iter().enumerate() {
            serial += 1;
            let number = staff_number(street_id, i);
            let input = PersonInput {
                name: name(serial),
                employee_number: number.clone(),
                membership: Membership::Street(street_id.into()),
                qualifications: vec![],
                position: position.into(),
                title: title.into(),
                phone: phone(serial),
            };
            report.count(insert_person(&mut tx, &number, &input).await?);
            if let Some(areas) = LEADER_AREAS.iter().find(|(n, _)| *n == i).map(|(_, a)| *a) {
                history::set_leader_areas(&mut tx, person_id(&number), areas).await?;
            }
        }

        for (department_id, kind, suffix, qualification) in STATION_KINDS {
            let station_id = format!("{street_id}-{department_id}");
            let station = StationInput {
                id: station_id.clone(),
                department_id: department_id.into(),
                street_id: street_id.into(),
                served_street_ids: vec![],
                name: format!("{}{suffix}", street_name.trim_end_matches("街道")),
                kind: kind.into(),
                head_person_id: None,
                head_on_party_working_committee: false,
                committee_note: String::new(),
            };
            report.count(organisations::insert_station(&mut tx, &station).await?.is_some());
            for i in 0..=OFFICERS_PER_STATION {
                serial += 1;
                let number = officer_number(&station_id, i);
                let head = i == 0;
                let input = PersonInput {
                    name: name(serial),
                    employee_number: number.clone(),
                    membership: Membership::Department {
                        department_id: department_id.into(),
                        station_id: Some(station_id.clone()),
                    },
                    qualifications: vec![qualification.into()],
                    position: if head { "POSITION_STATION_HEAD" } else { "POSITION_STAFF" }.into(),
                    title: if head { format!("{suffix}所长") } else { "执法队员".into() },
                    phone: phone(serial),
                };
                report.count(insert_person(&mut tx, &number, &input).await?);
            }
            // Heads sit on the street's Party Working Committee, as the reform expects, except
            // in two streets, so that the gap shows somewhere.
            let head = person_id(&officer_number(&station_id, 0));
            let current = organisations::get_station(&mut tx, &station_id, false).await?;
            if current.is_some_and(|s| s.head_person_id.is_none()) {
                let on_committee = !matches!(street_id, "shidong" | "nanhu");
                let with_head = StationInput {
                    head_person_id: Some(head),
                    head_on_party_working_committee: on_committee,
                    committee_note: if on_committee || street_id == "nanhu" {
                        String::new()
                    } else {
                        "新任职未满一年，待党工委换届时增补".into()
                    },
                    ..station
                };
                organisations::update_station(&mut tx, &with_head).await?;
            }
        }

        // The sections working closely with the stations (谈话范围).
        for (code, section_name, head, departments) in SECTIONS {
            let stations: Vec<String> = departments.iter().map(|d| format!("{street_id}-{d}")).collect();
            let head = person_id(&staff_number(street_id, head));
            let id = format!("{street_id}-{code}");
            report.count(history::insert_section(&mut tx, &id, street_id, section_name, Some(head), &stations).await?);
        }
    }

    // Departments without stations keep their people at the district.
    for department_id in ["guihua", "xiaofang"] {
        let qualification =
            if department_id == "guihua" { "QUALIFICATION_SURVEYOR" } else { "QUALIFICATION_FIRE_INSPECTOR" };
        for i in 0..6 {
            serial += 1;
            let number = format!("{department_id}-{i:02}");
            let input = PersonInput {
                name: name(serial),
                employee_number: number.clone(),
                membership: Membership::Department { department_id: department_id.into(), station_id: None },
                qualifications: vec![qualification.into(), "QUALIFICATION_LAW_ENFORCEMENT_CERTIFICATE".into()],
                position: if i == 0 { "POSITION_DEPARTMENT_LEADER" } else { "POSITION_STAFF" }.into(),
                title: if i == 0 { "分局长".into() } else { "科员".into() },
                phone: phone(serial),
            };
            report.count(insert_person(&mut tx, &number, &input).await?);
        }
    }

    // 中南路街综合执法中心: an urban-management officer and a police officer resident (常驻),
    // market order holding a seat (席位).
    let start = NaiveDate::from_ymd_opt(2019, 7, 1).expect("a valid date");
    let centre = "STREET_CENTER_COMPREHENSIVE_LAW_ENFORCEMENT_CENTER";
    for (department_id, resident) in [("chengguan", true), ("gongan", true), ("shichang", false)] {
        let person = resident.then(|| person_id(&officer_number(&format!("{ZHONGNANLU}-{department_id}"), 1)));
        let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("minhu-roster-seed/secondment/{department_id}").as_bytes());
        if people::get_secondment(&mut tx, id, false).await?.is_some() {
            report.count(false);
            continue;
        }
        let input = SecondmentInput {
            kind: if resident { "SECONDMENT_KIND_RESIDENT" } else { "SECONDMENT_KIND_SEAT" }.into(),
            person_id: person,
            department_id: department_id.into(),
            street_id: ZHONGNANLU.into(),
            center: centre.into(),
            start_date: start,
            end_date: None,
            note: if resident { "常驻".into() } else { "市场秩序席位".into() },
        };
        people::insert_secondment(&mut tx, id, &input).await?;
        report.count(true);
    }

    tx.commit().await?;
    Ok(report)
}

async fn insert_person(tx: &mut sqlx::PgConnection, number: &str, input: &PersonInput) -> Result<bool, RosterError> {
    let id = person_id(number);
    if people::get_person(tx, id, false).await?.is_some() {
        return Ok(false);
    }
    people::insert_person(tx, id, input).await?;
    Ok(true)
}
