//! Notification schedules: the `notify-frequency` and `timezone` preferences (reference §7.2,
//! §7.3) and when a user's digest is due (§7.5, §7.6).
//!
//! Everything takes the clock as an argument, so the digest pass stays deterministic and the
//! tests can use fixed instants.
//!
//! Daylight saving: a scheduled local time that falls in a spring-forward gap fires at the
//! first valid instant after the gap (the moment the clocks jump); one that occurs twice in
//! a fall-back fires once, at the earlier instant.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Utc, offset::LocalResult,
};

use crate::protocol::definition::{DefinitionError, MetaValue, parse_definition};

/// How often a user gets notification mail (`notify-frequency`, §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// Every digest pass that finds pending changes, subject to a minimum interval.
    Immediately,
    /// Once a day at the first pass at or after `hour:minute` local time.
    Daily { hour: u8, minute: u8 },
    /// Once a week; `day` is 0 = Sunday … 6 = Saturday.
    Weekly { day: u8, hour: u8, minute: u8 },
    /// A 1.1 summary alert: on the hours (bit h of `hours`, 0–23) of the week days (bit d
    /// of `days`, 0 = Sunday) chosen, at minute 0 local time.
    Summary { days: u8, hours: u32 },
}

/// Why a `notify-frequency` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrequencyError {
    Syntax(DefinitionError),
    UnknownType(String),
    UnknownKey(String),
    /// DAILY and WEEKLY need `time="hh:mm"` (or the design note's `hour="hh:mm"`).
    MissingTime,
    /// Both `time` and `hour` given: which one counts would be a guess.
    TimeAndHour,
    InvalidTime,
    MissingDay,
    InvalidDay,
}

impl fmt::Display for FrequencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid notification frequency: ")?;
        match self {
            FrequencyError::Syntax(e) => write!(f, "{e}"),
            FrequencyError::UnknownType(t) => {
                write!(f, "unknown type '{t}' (use IMMEDIATELY, DAILY or WEEKLY)")
            }
            FrequencyError::UnknownKey(k) => write!(f, "unknown key '{k}'"),
            FrequencyError::MissingTime => write!(f, "time=\"hh:mm\" is required"),
            FrequencyError::TimeAndHour => write!(f, "give either 'time' or 'hour', not both"),
            FrequencyError::InvalidTime => write!(f, "the time must be \"hh:mm\" (00:00 to 23:59)"),
            FrequencyError::MissingDay => write!(f, "WEEKLY requires day=0..6 (0 = Sunday)"),
            FrequencyError::InvalidDay => write!(f, "day must be an integer 0..6 (0 = Sunday)"),
        }
    }
}

impl std::error::Error for FrequencyError {}

/// Parses exactly `hh:mm`, 00:00 to 23:59.
fn parse_hh_mm(s: &str) -> Option<(u8, u8)> {
    let (h, m) = s.split_once(':')?;
    let two_digits = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return None;
    }
    let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

impl Frequency {
    /// Parses a `notify-frequency` value, e.g. `IMMEDIATELY`, `DAILY time="08:30"` or
    /// `WEEKLY day=1 hour="07:00"`. The manual says `time`, the design note `hour`; either is
    /// accepted (§7.3), and the caller stores the text verbatim.
    pub fn parse(s: &str) -> Result<Frequency, FrequencyError> {
        let def = parse_definition(s).map_err(FrequencyError::Syntax)?;
        let kind = def.kind.as_str();
        if !matches!(kind, "IMMEDIATELY" | "DAILY" | "WEEKLY") {
            return Err(FrequencyError::UnknownType(def.kind.clone()));
        }
        let mut time = None;
        let mut day = None;
        for (key, value) in &def.meta {
            match (kind, key.as_str()) {
                ("DAILY" | "WEEKLY", "time" | "hour") => {
                    if time.is_some() {
                        return Err(FrequencyError::TimeAndHour);
                    }
                    time = Some(match value {
                        MetaValue::Str(t) => parse_hh_mm(t).ok_or(FrequencyError::InvalidTime)?,
                        _ => return Err(FrequencyError::InvalidTime),
                    });
                }
                ("WEEKLY", "day") => {
                    day = Some(match value {
                        MetaValue::Int(d @ 0..=6) => *d as u8,
                        _ => return Err(FrequencyError::InvalidDay),
                    });
                }
                _ => return Err(FrequencyError::UnknownKey(key.clone())),
            }
        }
        Ok(match kind {
            "IMMEDIATELY" => Frequency::Immediately,
            "DAILY" => {
                let (hour, minute) = time.ok_or(FrequencyError::MissingTime)?;
                Frequency::Daily { hour, minute }
            }
            _ => {
                let day = day.ok_or(FrequencyError::MissingDay)?;
                let (hour, minute) = time.ok_or(FrequencyError::MissingTime)?;
                Frequency::Weekly { day, hour, minute }
            }
        })
    }
}

impl FromStr for Frequency {
    type Err = FrequencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Frequency::parse(s)
    }
}

/// A user's time zone: the protocol's fixed `±hhmm` offset, or (our extension) an IANA
/// name, with which daylight saving is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserTz {
    /// Minutes east of UTC.
    Offset(i32),
    Named(chrono_tz::Tz),
}

/// Why a `timezone` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimezoneError;

impl fmt::Display for TimezoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "invalid time zone: use +hhmm or -hhmm (-1400 to +1400) or a name like Europe/Warsaw",
        )
    }
}

impl std::error::Error for TimezoneError {}

impl UserTz {
    /// Parses `+hhmm`/`-hhmm` (−1400 … +1400, minutes 00–59) or an IANA zone name.
    pub fn parse(s: &str) -> Result<UserTz, TimezoneError> {
        if let Some(sign) = s
            .strip_prefix('+')
            .map(|_| 1)
            .or(s.strip_prefix('-').map(|_| -1))
        {
            let digits = &s[1..];
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TimezoneError);
            }
            let hhmm: i32 = digits.parse().map_err(|_| TimezoneError)?;
            let (hours, minutes) = (hhmm / 100, hhmm % 100);
            if hhmm > 1400 || minutes > 59 {
                return Err(TimezoneError);
            }
            return Ok(UserTz::Offset(sign * (hours * 60 + minutes)));
        }
        s.parse::<chrono_tz::Tz>()
            .map(UserTz::Named)
            .map_err(|_| TimezoneError)
    }

    /// The fixed offset; one out of chrono's range (only constructible by hand) counts as UTC.
    fn fixed(minutes: i32) -> FixedOffset {
        minutes
            .checked_mul(60)
            .and_then(FixedOffset::east_opt)
            .unwrap_or(Utc.fix())
    }

    /// The user's wall-clock time at `t`, e.g. for dates shown in a digest. (Within a day of
    /// chrono's limits, where the local time may not be representable, it is `t` in UTC.)
    pub fn to_local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        let utc = t.naive_utc();
        let offset = match self {
            UserTz::Offset(m) => Self::fixed(*m),
            UserTz::Named(tz) => tz.offset_from_utc_datetime(&utc).fix(),
        };
        utc.checked_add_signed(Duration::seconds(offset.local_minus_utc().into()))
            .unwrap_or(utc)
    }

    /// The instant at which the wall clock shows `local`, by the DST rule in the module doc.
    fn resolve(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            UserTz::Offset(m) => resolve_in(&Self::fixed(*m), local),
            UserTz::Named(tz) => resolve_in(tz, local),
        }
    }
}

impl FromStr for UserTz {
    type Err = TimezoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserTz::parse(s)
    }
}

impl fmt::Display for UserTz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserTz::Offset(m) => {
                let sign = if *m < 0 { '-' } else { '+' };
                let m = m.unsigned_abs();
                write!(f, "{sign}{:02}{:02}", m / 60, m % 60)
            }
            UserTz::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// The longest gap searched for the end of a spring-forward (Samoa skipped a whole day).
const MAX_GAP_MINUTES: i64 = 48 * 60;

fn resolve_in<Z: TimeZone>(zone: &Z, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let first = |r: LocalResult<DateTime<Z>>| match r {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => None,
    };
    if let Some(t) = first(zone.from_local_datetime(&local)) {
        return Some(t);
    }
    // In a gap: the first wall-clock minute that exists again is the moment of the jump.
    (1..=MAX_GAP_MINUTES).find_map(|m| {
        let later = local.checked_add_signed(Duration::minutes(m))?;
        first(zone.from_local_datetime(&later))
    })
}

/// Keeps the date arithmetic below far from chrono's limits, where it would fail.
fn in_safe_range(t: DateTime<Utc>) -> bool {
    let margin = Duration::days(60);
    t > DateTime::<Utc>::MIN_UTC + margin && t < DateTime::<Utc>::MAX_UTC - margin
}

/// Every slot whose local date lies within `days` of the local date of `around`.
fn slots(
    freq: Frequency,
    tz: UserTz,
    around: DateTime<Utc>,
    days: std::ops::RangeInclusive<i64>,
) -> impl Iterator<Item = DateTime<Utc>> {
    // (week days, hours of the day) as bit masks, and the minute.
    let (weekdays, hours, minute): (u8, u32, u8) = match freq {
        Frequency::Immediately => (0, 0, 0),
        Frequency::Daily { hour, minute } => (0x7f, 1 << hour, minute),
        Frequency::Weekly { day, hour, minute } => (1 << day, 1 << hour, minute),
        Frequency::Summary { days, hours } => (days, hours, 0),
    };
    let active = freq != Frequency::Immediately && in_safe_range(around);
    let today = active.then(|| tz.to_local(around).date());
    days.filter_map(move |d| {
        let date: NaiveDate = today?.checked_add_signed(Duration::days(d))?;
        (weekdays & (1 << date.weekday().num_days_from_sunday()) != 0).then_some(date)
    })
    .flat_map(move |date| {
        (0..24u32)
            .filter(move |h| hours & (1 << h) != 0)
            .filter_map(move |h| {
                let time = NaiveTime::from_hms_opt(h, minute.into(), 0)?;
                tz.resolve(date.and_time(time))
            })
    })
}

/// The most recent scheduled instant at or before `now`; `None` for IMMEDIATELY.
pub fn last_slot(freq: Frequency, tz: UserTz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Tomorrow is included because a local date's slot can map to an earlier UTC day.
    slots(freq, tz, now, -15..=1).filter(|s| *s <= now).max()
}

/// The first scheduled instant after `after`; `after` itself for IMMEDIATELY (and
/// `DateTime::<Utc>::MAX_UTC` if no slot exists within chrono's range).
pub fn next_slot(freq: Frequency, tz: UserTz, after: DateTime<Utc>) -> DateTime<Utc> {
    if freq == Frequency::Immediately {
        return after;
    }
    slots(freq, tz, after, -1..=15)
        .filter(|s| *s > after)
        .min()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether a user's digest should go out in the pass running at `now` (§7.6 step 3a).
///
/// IMMEDIATELY: unless a mail went out less than `min_interval` ago. DAILY/WEEKLY: when the
/// latest slot is newer than the last mail, so after downtime the missed slots are caught up
/// with one mail, not one per slot. A user who was never sent anything is due at once.
pub fn is_due(
    freq: Frequency,
    tz: UserTz,
    now: DateTime<Utc>,
    last_sent: Option<DateTime<Utc>>,
    min_interval: Duration,
) -> bool {
    match freq {
        Frequency::Immediately => last_sent.is_none_or(|sent| now - sent >= min_interval),
        _ => match last_slot(freq, tz, now) {
            Some(slot) => last_sent.is_none_or(|sent| slot > sent),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;
    use proptest::prelude::*;

    /// 1.1 summary alerts in Europe/Warsaw across both changes of 2026.
    #[test]
    fn summary_slots_follow_dst() {
        let warsaw = UserTz::Named(Tz::Europe__Warsaw);
        let every_day = 0x7f;
        let at = |hour: u32| Frequency::Summary {
            days: every_day,
            hours: 1 << hour,
        };
        // 08:00 is 07:00 UTC in winter time, 06:00 UTC the day the clocks go forward.
        assert_eq!(
            next_slot(at(8), warsaw, utc("2026-03-28T07:00:00Z")),
            utc("2026-03-29T06:00:00Z")
        );
        // 02:00 does not exist on 29 March: the slot is the jump, 03:00 CEST.
        assert_eq!(
            next_slot(at(2), warsaw, utc("2026-03-28T23:30:00Z")),
            utc("2026-03-29T01:00:00Z")
        );
        // 02:00 happens twice on 25 October: once, at the first.
        let first = next_slot(at(2), warsaw, utc("2026-10-24T23:30:00Z"));
        assert_eq!(first, utc("2026-10-25T00:00:00Z"));
        assert_eq!(next_slot(at(2), warsaw, first), utc("2026-10-26T01:00:00Z"));
        // Several hours a day, Mondays only (bit 1): Sunday evening waits for Monday 08:00.
        let mondays = Frequency::Summary {
            days: 1 << 1,
            hours: (1 << 8) | (1 << 16),
        };
        let sunday = utc("2026-03-29T18:00:00Z");
        let monday_8 = next_slot(mondays, warsaw, sunday);
        assert_eq!(monday_8, utc("2026-03-30T06:00:00Z"));
        assert_eq!(
            next_slot(mondays, warsaw, monday_8),
            utc("2026-03-30T14:00:00Z")
        );
        assert_eq!(
            last_slot(mondays, warsaw, sunday),
            Some(utc("2026-03-23T15:00:00Z"))
        );
        // No day or no hour chosen: never.
        let never = Frequency::Summary { days: 0, hours: 1 };
        assert_eq!(next_slot(never, warsaw, sunday), DateTime::<Utc>::MAX_UTC);
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn daily(hour: u8, minute: u8) -> Frequency {
        Frequency::Daily { hour, minute }
    }

    fn weekly(day: u8, hour: u8, minute: u8) -> Frequency {
        Frequency::Weekly { day, hour, minute }
    }

    const UTC0: UserTz = UserTz::Offset(0);
    const WARSAW: UserTz = UserTz::Named(Tz::Europe__Warsaw);

    #[test]
    fn frequency_parsing() {
        let p = |s: &str| Frequency::parse(s);
        assert_eq!(p("IMMEDIATELY"), Ok(Frequency::Immediately));
        assert_eq!(p("DAILY time=\"08:30\""), Ok(daily(8, 30)));
        assert_eq!(p("DAILY hour=\"23:59\""), Ok(daily(23, 59)));
        assert_eq!(p("WEEKLY day=1 time=\"07:00\""), Ok(weekly(1, 7, 0)));
        assert_eq!(p("WEEKLY hour=\"00:00\" day=0"), Ok(weekly(0, 0, 0)));
        assert_eq!("WEEKLY day=6 time=\"12:05\"".parse(), Ok(weekly(6, 12, 5)));

        assert!(matches!(p("DAILY time"), Err(FrequencyError::Syntax(_))));
        assert!(matches!(p("immediately"), Err(FrequencyError::Syntax(_))));
        assert!(matches!(p(""), Err(FrequencyError::Syntax(_))));
        assert_eq!(
            p("MONTHLY"),
            Err(FrequencyError::UnknownType("MONTHLY".into()))
        );
        assert_eq!(p("DAILY"), Err(FrequencyError::MissingTime));
        assert_eq!(p("WEEKLY day=1"), Err(FrequencyError::MissingTime));
        assert_eq!(p("WEEKLY time=\"07:00\""), Err(FrequencyError::MissingDay));
        assert_eq!(
            p("DAILY time=\"08:00\" hour=\"08:00\""),
            Err(FrequencyError::TimeAndHour)
        );
        for bad in [
            "8:30", "08:60", "24:00", "0830", "08:30:00", "", "aa:bb", "+8:30",
        ] {
            assert_eq!(
                p(&format!("DAILY time=\"{bad}\"")),
                Err(FrequencyError::InvalidTime),
                "{bad}"
            );
        }
        assert_eq!(p("DAILY time=830"), Err(FrequencyError::InvalidTime));
        assert_eq!(
            p("WEEKLY day=7 time=\"07:00\""),
            Err(FrequencyError::InvalidDay)
        );
        assert_eq!(
            p("WEEKLY day=-1 time=\"07:00\""),
            Err(FrequencyError::InvalidDay)
        );
        assert_eq!(
            p("WEEKLY day=\"1\" time=\"07:00\""),
            Err(FrequencyError::InvalidDay)
        );
        assert_eq!(
            p("DAILY day=1 time=\"07:00\""),
            Err(FrequencyError::UnknownKey("day".into()))
        );
        assert_eq!(
            p("IMMEDIATELY time=\"07:00\""),
            Err(FrequencyError::UnknownKey("time".into()))
        );
        assert_eq!(
            p("DAILY time=\"07:00\" zone=1"),
            Err(FrequencyError::UnknownKey("zone".into()))
        );
    }

    #[test]
    fn timezone_parsing() {
        let p = |s: &str| UserTz::parse(s);
        assert_eq!(p("+0000"), Ok(UserTz::Offset(0)));
        assert_eq!(p("-0000"), Ok(UserTz::Offset(0)));
        assert_eq!(p("+0100"), Ok(UserTz::Offset(60)));
        assert_eq!(p("+0530"), Ok(UserTz::Offset(330)));
        assert_eq!(p("-0930"), Ok(UserTz::Offset(-570)));
        assert_eq!(p("+1400"), Ok(UserTz::Offset(840)));
        assert_eq!(p("-1400"), Ok(UserTz::Offset(-840)));
        assert_eq!(p("Europe/Warsaw"), Ok(WARSAW));
        assert_eq!("UTC".parse(), Ok(UserTz::Named(Tz::UTC)));
        for bad in [
            "",
            "+",
            "+1401",
            "-1401",
            "+1500",
            "+0060",
            "+0199",
            "+01:00",
            "0100",
            "+100",
            "+01000",
            "+01a0",
            "++100",
            "-7000",
            "Mars/Olympus",
            " Europe/Warsaw",
            "+٠١٠٠",
        ] {
            assert_eq!(p(bad), Err(TimezoneError), "{bad:?}");
        }
        assert_eq!(UserTz::Offset(-570).to_string(), "-0930");
        assert_eq!(UserTz::Offset(840).to_string(), "+1400");
        assert_eq!(WARSAW.to_string(), "Europe/Warsaw");
    }

    #[test]
    fn immediately() {
        let f = Frequency::Immediately;
        let now = utc("2024-06-01T12:00:00Z");
        assert_eq!(last_slot(f, UTC0, now), None);
        assert_eq!(next_slot(f, UTC0, now), now);
        let min = Duration::minutes(15);
        assert!(is_due(f, UTC0, now, None, min));
        assert!(!is_due(
            f,
            UTC0,
            now,
            Some(utc("2024-06-01T11:50:00Z")),
            min
        ));
        assert!(is_due(f, UTC0, now, Some(utc("2024-06-01T11:45:00Z")), min));
        assert!(is_due(f, UTC0, now, Some(now), Duration::zero()));
    }

    #[test]
    fn daily_in_utc() {
        let f = daily(8, 30);
        let at = |s| last_slot(f, UTC0, utc(s));
        assert_eq!(
            at("2024-03-10T08:29:59Z"),
            Some(utc("2024-03-09T08:30:00Z"))
        );
        assert_eq!(
            at("2024-03-10T08:30:00Z"),
            Some(utc("2024-03-10T08:30:00Z"))
        );
        assert_eq!(
            at("2024-03-10T23:59:59Z"),
            Some(utc("2024-03-10T08:30:00Z"))
        );
        assert_eq!(
            next_slot(f, UTC0, utc("2024-03-10T08:29:59Z")),
            utc("2024-03-10T08:30:00Z")
        );
        assert_eq!(
            next_slot(f, UTC0, utc("2024-03-10T08:30:00Z")),
            utc("2024-03-11T08:30:00Z")
        );
        // Across a year end and a leap day.
        assert_eq!(
            next_slot(f, UTC0, utc("2023-12-31T09:00:00Z")),
            utc("2024-01-01T08:30:00Z")
        );
        assert_eq!(
            at("2024-03-01T08:00:00Z"),
            Some(utc("2024-02-29T08:30:00Z"))
        );
    }

    #[test]
    fn daily_with_half_hour_offset() {
        let ist = UserTz::parse("+0530").unwrap();
        // 09:00 in +0530 is 03:30 UTC.
        let f = daily(9, 0);
        assert_eq!(
            last_slot(f, ist, utc("2024-06-01T03:29:00Z")),
            Some(utc("2024-05-31T03:30:00Z"))
        );
        assert_eq!(
            next_slot(f, ist, utc("2024-06-01T03:29:00Z")),
            utc("2024-06-01T03:30:00Z")
        );
        // 02:00 local is 20:30 UTC the day before: the local date is ahead of UTC's.
        let f = daily(2, 0);
        assert_eq!(
            last_slot(f, ist, utc("2024-06-01T21:00:00Z")),
            Some(utc("2024-06-01T20:30:00Z"))
        );
        assert_eq!(
            last_slot(f, ist, utc("2024-06-01T20:29:00Z")),
            Some(utc("2024-05-31T20:30:00Z"))
        );
        assert_eq!(
            next_slot(f, ist, utc("2024-06-01T19:00:00Z")),
            utc("2024-06-01T20:30:00Z")
        );
        // And behind it: 23:00 at -0800 is 07:00 UTC the next day.
        let pst = UserTz::parse("-0800").unwrap();
        let f = daily(23, 0);
        assert_eq!(
            last_slot(f, pst, utc("2024-06-02T06:59:00Z")),
            Some(utc("2024-06-01T07:00:00Z"))
        );
        assert_eq!(
            next_slot(f, pst, utc("2024-06-02T06:59:00Z")),
            utc("2024-06-02T07:00:00Z")
        );
    }

    #[test]
    fn warsaw_spring_forward() {
        // 2024-03-31 02:00 CET (+1) jumps to 03:00 CEST (+2), at 01:00 UTC.
        let f = daily(2, 30);
        assert_eq!(
            last_slot(f, WARSAW, utc("2024-03-31T00:59:00Z")),
            Some(utc("2024-03-30T01:30:00Z"))
        );
        // 02:30 does not exist that day: the slot is the jump itself, 03:00 CEST.
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-03-30T01:30:00Z")),
            utc("2024-03-31T01:00:00Z")
        );
        assert_eq!(
            last_slot(f, WARSAW, utc("2024-03-31T01:00:00Z")),
            Some(utc("2024-03-31T01:00:00Z"))
        );
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-03-31T01:00:00Z")),
            utc("2024-04-01T00:30:00Z")
        );
        // An ordinary hour moves by one hour in UTC across the change.
        let f = daily(8, 0);
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-03-30T00:00:00Z")),
            utc("2024-03-30T07:00:00Z")
        );
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-03-30T07:00:00Z")),
            utc("2024-03-31T06:00:00Z")
        );
        // Weekly on Sunday in the gap, likewise.
        let f = weekly(0, 2, 15);
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-03-25T00:00:00Z")),
            utc("2024-03-31T01:00:00Z")
        );
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-03-31T01:00:00Z")),
            utc("2024-04-07T00:15:00Z")
        );
    }

    #[test]
    fn warsaw_fall_back() {
        // 2024-10-27 03:00 CEST (+2) falls back to 02:00 CET (+1), at 01:00 UTC, so 02:30
        // happens at 00:30 UTC and again at 01:30 UTC. Only the first counts.
        let f = daily(2, 30);
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-10-26T23:00:00Z")),
            utc("2024-10-27T00:30:00Z")
        );
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-10-27T00:30:00Z")),
            utc("2024-10-28T01:30:00Z")
        );
        let later = utc("2024-10-27T01:45:00Z");
        assert_eq!(
            last_slot(f, WARSAW, later),
            Some(utc("2024-10-27T00:30:00Z"))
        );
        let min = Duration::zero();
        assert!(!is_due(
            f,
            WARSAW,
            later,
            Some(utc("2024-10-27T00:31:00Z")),
            min
        ));
        let f = daily(8, 0);
        assert_eq!(
            next_slot(f, WARSAW, utc("2024-10-26T12:00:00Z")),
            utc("2024-10-27T07:00:00Z")
        );
    }

    #[test]
    fn weekly_boundaries() {
        // 2024-06-02 is a Sunday.
        let f = weekly(0, 10, 0);
        assert_eq!(
            last_slot(f, UTC0, utc("2024-06-02T09:59:00Z")),
            Some(utc("2024-05-26T10:00:00Z"))
        );
        assert_eq!(
            last_slot(f, UTC0, utc("2024-06-02T10:00:00Z")),
            Some(utc("2024-06-02T10:00:00Z"))
        );
        assert_eq!(
            next_slot(f, UTC0, utc("2024-06-02T10:00:00Z")),
            utc("2024-06-09T10:00:00Z")
        );
        // Saturday 23:30 and across the month and year ends.
        let f = weekly(6, 23, 30);
        assert_eq!(
            next_slot(f, UTC0, utc("2024-12-29T00:00:00Z")),
            utc("2025-01-04T23:30:00Z")
        );
        assert_eq!(
            last_slot(f, UTC0, utc("2025-01-04T23:29:00Z")),
            Some(utc("2024-12-28T23:30:00Z"))
        );
        // Monday 01:00 at +0200 is Sunday 23:00 UTC.
        let tz = UserTz::parse("+0200").unwrap();
        let f = weekly(1, 1, 0);
        assert_eq!(
            next_slot(f, tz, utc("2024-06-02T22:00:00Z")),
            utc("2024-06-02T23:00:00Z")
        );
        assert_eq!(
            last_slot(f, tz, utc("2024-06-02T23:30:00Z")),
            Some(utc("2024-06-02T23:00:00Z"))
        );
        // Saturday 23:30 at +1400 is Saturday 09:30 UTC; Sunday 00:15 at -1000 is 10:15 UTC.
        let f = weekly(6, 23, 30);
        assert_eq!(
            next_slot(f, UserTz::Offset(840), utc("2024-06-01T00:00:00Z")),
            utc("2024-06-01T09:30:00Z")
        );
        let f = weekly(0, 0, 15);
        assert_eq!(
            next_slot(f, UserTz::Offset(-600), utc("2024-06-01T00:00:00Z")),
            utc("2024-06-02T10:15:00Z")
        );
    }

    #[test]
    fn catches_up_once_after_downtime() {
        let f = daily(8, 0);
        let min = Duration::minutes(5);
        let sent = utc("2024-06-01T08:00:05Z");
        assert!(!is_due(
            f,
            UTC0,
            utc("2024-06-01T20:00:00Z"),
            Some(sent),
            min
        ));
        // Down from 06-01 20:00 until 06-04 12:00: three slots missed, one mail.
        let back = utc("2024-06-04T12:00:00Z");
        assert!(is_due(f, UTC0, back, Some(sent), min));
        assert!(!is_due(
            f,
            UTC0,
            utc("2024-06-04T12:05:00Z"),
            Some(back),
            min
        ));
        assert!(!is_due(
            f,
            UTC0,
            utc("2024-06-05T07:59:59Z"),
            Some(back),
            min
        ));
        assert!(is_due(
            f,
            UTC0,
            utc("2024-06-05T08:00:00Z"),
            Some(back),
            min
        ));
        // Weekly: down for three weeks, one mail, then the normal rhythm.
        let f = weekly(1, 7, 0);
        let sent = utc("2024-06-03T07:00:00Z");
        let back = utc("2024-06-26T00:00:00Z");
        assert!(is_due(f, WARSAW, back, Some(sent), min));
        assert!(!is_due(
            f,
            WARSAW,
            utc("2024-06-30T00:00:00Z"),
            Some(back),
            min
        ));
        assert!(is_due(
            f,
            WARSAW,
            utc("2024-07-01T05:00:00Z"),
            Some(back),
            min
        ));
        // Never sent: due at the first pass.
        assert!(is_due(f, WARSAW, back, None, min));
    }

    #[test]
    fn extremes_do_not_panic() {
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            for tz in [
                UserTz::Offset(840),
                UserTz::Offset(-840),
                WARSAW,
                UserTz::Offset(i32::MAX),
            ] {
                assert_eq!(last_slot(daily(0, 0), tz, t), None);
                assert_eq!(next_slot(daily(0, 0), tz, t), DateTime::<Utc>::MAX_UTC);
                let _ = is_due(daily(0, 0), tz, t, Some(t), Duration::zero());
                let _ = is_due(
                    Frequency::Immediately,
                    tz,
                    t,
                    Some(DateTime::<Utc>::MIN_UTC),
                    Duration::zero(),
                );
            }
        }
    }

    fn arb_freq() -> impl Strategy<Value = Frequency> {
        prop_oneof![
            (0u8..24, 0u8..60).prop_map(|(h, m)| daily(h, m)),
            (0u8..7, 0u8..24, 0u8..60).prop_map(|(d, h, m)| weekly(d, h, m)),
        ]
    }

    fn arb_tz() -> impl Strategy<Value = UserTz> {
        prop_oneof![
            (-840i32..=840).prop_map(UserTz::Offset),
            prop::sample::select(vec![
                Tz::Europe__Warsaw,
                Tz::America__New_York,
                Tz::Australia__Lord_Howe,
                Tz::Pacific__Apia,
                Tz::America__Santiago,
                Tz::Asia__Kolkata,
                Tz::Europe__London,
            ])
            .prop_map(UserTz::Named),
        ]
    }

    proptest! {
        #[test]
        fn frequency_parse_never_panics(s in any::<String>()) {
            let _ = Frequency::parse(&s);
        }

        #[test]
        fn timezone_parse_never_panics(s in any::<String>()) {
            let _ = UserTz::parse(&s);
        }

        #[test]
        fn schedule_never_panics(
            f in arb_freq(), tz in arb_tz(), secs in any::<i64>(), sent in any::<i64>(),
        ) {
            let clamp = |s: i64| DateTime::from_timestamp(s % 8_300_000_000_000, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
            let (now, sent) = (clamp(secs), clamp(sent));
            let _ = last_slot(f, tz, now);
            let _ = next_slot(f, tz, now);
            let _ = is_due(f, tz, now, Some(sent), Duration::minutes(5));
        }

        /// Between 1900 and 2100: last ≤ now < next, no slot in between, and slots are
        /// separated by a day (a week) except around a DST jump.
        #[test]
        fn slots_are_consistent(f in arb_freq(), tz in arb_tz(), secs in -2_208_988_800i64..4_102_444_800) {
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            let last = last_slot(f, tz, now).unwrap();
            let next = next_slot(f, tz, now);
            prop_assert!(last <= now && now < next);
            prop_assert_eq!(next_slot(f, tz, last - Duration::seconds(1)), last);
            prop_assert_eq!(last_slot(f, tz, next), Some(next));
            prop_assert_eq!(last_slot(f, tz, next - Duration::seconds(1)), Some(last));
            let period = if matches!(f, Frequency::Weekly { .. }) { 7 } else { 1 };
            prop_assert!(next - last <= Duration::days(period) + Duration::days(1));
            prop_assert!(is_due(f, tz, now, Some(last - Duration::seconds(1)), Duration::zero()));
            prop_assert!(!is_due(f, tz, now, Some(last), Duration::zero()));
        }
    }
}
