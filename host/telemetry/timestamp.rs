//! Log timestamps exactly as tracing-subscriber's `SystemTime` writes them
//! (RFC 3339 in UTC with microseconds: `2026-11-28T03:40:08.123456Z`), but
//! with the date and time of day worked out once a second per thread: the
//! stock timer runs both through `fmt` for every line, a quarter of what a
//! log line costs.

use std::cell::Cell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// `YYYY-MM-DDTHH:MM:SS.` of one second.
type Second = [u8; 20];

/// The first second of the year 10000, which the stock timer writes with a
/// `+` and five digits: from there on it writes them.
const YEAR_10000: u64 = 253_402_300_800;

#[derive(Debug, Clone, Copy, Default)]
pub struct Timestamps;

impl FormatTime for Timestamps {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let since = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) if since.as_secs() < YEAR_10000 => since,
            // A clock before 1970 or past 9999: rare enough for the slow way.
            _ => return tracing_subscriber::fmt::time::SystemTime.format_time(w),
        };
        thread_local! {
            static LAST: Cell<Option<(u64, Second)>> = const { Cell::new(None) };
        }
        let secs = since.as_secs();
        let second = match LAST.get() {
            Some((at, text)) if at == secs => text,
            _ => {
                let text = second_text(secs);
                LAST.set(Some((secs, text)));
                text
            }
        };
        let mut line = [0u8; 27];
        line[..20].copy_from_slice(&second);
        digits(&mut line[20..26], since.subsec_micros());
        line[26] = b'Z';
        w.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` of `secs` after the Unix epoch (before year 10000).
fn second_text(secs: u64) -> Second {
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let mut text = *b"0000-00-00T00:00:00.";
    digits(&mut text[0..4], year);
    digits(&mut text[5..7], month);
    digits(&mut text[8..10], day);
    digits(&mut text[11..13], (of_day / 3600) as u32);
    digits(&mut text[14..16], (of_day / 60 % 60) as u32);
    digits(&mut text[17..19], (of_day % 60) as u32);
    text
}

/// Writes `n` in decimal, zero-padded to the slice's width.
fn digits(out: &mut [u8], mut n: u32) {
    for place in out.iter_mut().rev() {
        *place = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Year, month and day of the `days`th day after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400) as u32 + (month <= 2) as u32;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(secs: u64) -> String {
        String::from_utf8(second_text(secs).to_vec()).unwrap()
    }

    #[test]
    fn seconds_are_written_as_rfc_3339() {
        assert_eq!(text(0), "1970-01-01T00:00:00.");
        assert_eq!(text(951_782_400), "2000-02-29T00:00:00.");
        assert_eq!(text(1_709_208_000), "2024-02-29T12:00:00.");
        assert_eq!(text(1_798_761_599), "2026-12-31T23:59:59.");
        assert_eq!(text(4_107_542_399), "2100-02-28T23:59:59.");
        assert_eq!(text(4_107_542_400), "2100-03-01T00:00:00.");
        assert_eq!(text(YEAR_10000 - 1), "9999-12-31T23:59:59.");
    }

    /// Every day from 1970 to 2200 follows the one before it.
    #[test]
    fn days_follow_one_another() {
        let mut previous = civil_from_days(0);
        for days in 1..84_000 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let leap = py % 4 == 0 && (py % 100 != 0 || py % 400 == 0);
            let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][pm as usize - 1];
            if (y, m) != (py, pm) {
                assert_eq!(pd, month_days, "day {days}: {previous:?} ends its month");
            }
            let next_day = (previous.0, previous.1, previous.2 + 1);
            let next_month = (previous.0, previous.1 + 1, 1);
            let next_year = (previous.0 + 1, 1, 1);
            assert!(
                [next_day, next_month, next_year].contains(&(y, m, d)),
                "day {days}: {previous:?} then {:?}",
                (y, m, d)
            );
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            previous = (y, m, d);
        }
    }

    /// The same text as tracing-subscriber's own timer, read in the same
    /// second (down to the microseconds' width).
    #[test]
    fn lines_read_as_the_stock_timer_writes_them() {
        let format = |timer: &dyn FormatTime| {
            let mut out = String::new();
            timer.format_time(&mut Writer::new(&mut out)).unwrap();
            out
        };
        for _ in 0..10 {
            let (ours, stock) = (format(&Timestamps), format(&tracing_subscriber::fmt::time::SystemTime));
            assert_eq!(ours.len(), stock.len(), "{ours} vs {stock}");
            if ours[..19] == stock[..19] {
                assert_eq!((&ours[19..20], &ours[26..]), (".", "Z"));
                assert!(ours[20..26].bytes().all(|b| b.is_ascii_digit()), "{ours}");
                return;
            }
        }
        panic!("the second changed between the two readings ten times over");
    }
}
