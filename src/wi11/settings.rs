//! GET SETTINGS: the server-wide settings the client reads at login, the languages of its
//! user interface and the time zones it offers (1.1 only).

use super::reply::Out;
use crate::commands::Shared;
use chrono::Offset;

/// The 16 languages of the 1.1.5 client and server, as (code, name in that language).
const LANGUAGES: [(&str, &str); 16] = [
    ("cs", "Česky"),
    ("de", "Deutsch"),
    ("en_US", "English / United States"),
    ("es", "Español"),
    ("fr", "Français"),
    ("hu", "Magyar"),
    ("it", "Italiano"),
    ("nb", "Norsk"),
    ("nl", "Nederlands"),
    ("pl", "Polski"),
    ("pt_BR", "Português / Brasil"),
    ("ru", "Русский"),
    ("sr", "Srpski"),
    ("tr", "Türkçe"),
    ("uk", "Українська"),
    ("zh_CN", "Chinese / China"),
];

/// Regions of the canonical IANA zone names (aliases such as `US/Eastern` are left out).
const REGIONS: [&str; 10] = [
    "Africa/",
    "America/",
    "Antarctica/",
    "Arctic/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
];

pub fn lines(app: &Shared, out: &mut Vec<u8>) {
    let file_max = app.config.server.max_attachment_bytes.to_string();
    let settings: [(&str, &str); 17] = [
        ("language", "en_US"),
        ("time_zone", "UTC"),
        ("number_format", ""),
        ("date_format", ""),
        ("time_format", ""),
        ("first_day_of_week", ""),
        ("project_page_size", "10"),
        ("folder_page_size", "10"),
        ("history_page_size", "20"),
        ("hide_id_column", ""),
        ("hide_empty_values", ""),
        ("history_order", "asc"),
        ("history_filter", "1"),
        ("default_format", "1"),
        ("comment_max_length", "10000"),
        ("file_max_size", &file_max),
        // '1' when alert and subscription mail is sent (feature notify): the client then
        // offers the e-mail options of alerts and subscriptions.
        (
            "email_enabled",
            if app.notifier.is_some() { "1" } else { "" },
        ),
    ];
    for (k, v) in settings {
        Out::line(out, "S").str(k).str(v).end();
    }
    for (code, name) in LANGUAGES {
        Out::line(out, "L").str(code).str(name).end();
    }
    let now = chrono::Utc::now().naive_utc();
    let mut zones: Vec<&chrono_tz::Tz> = chrono_tz::TZ_VARIANTS
        .iter()
        .filter(|z| REGIONS.iter().any(|r| z.name().starts_with(r)) || z.name() == "UTC")
        .collect();
    zones.sort_by_key(|z| z.name());
    for z in zones {
        let offset = z.offset_from_utc_datetime(&now).fix().local_minus_utc();
        Out::line(out, "Z").str(z.name()).int(offset).end();
    }
}

use chrono::TimeZone;

/// Whether GET SETTINGS offers `name` as a time zone (1.1's `time_zone` preference).
pub fn zone_offered(name: &str) -> bool {
    (REGIONS.iter().any(|r| name.starts_with(r)) || name == "UTC")
        && name
            .parse::<chrono_tz::Tz>()
            .is_ok_and(|z| z.name() == name)
}

/// Whether `code` is one of the languages GET SETTINGS lists.
pub fn language_offered(code: &str) -> bool {
    LANGUAGES.iter().any(|(c, _)| *c == code)
}
