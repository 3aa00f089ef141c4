//! The header of an `sfc.exe.log` line:
//! `(<counter>, +<n> ms) <Mon> <d> <HH:MM:SS> [<thread>]: <Component::Method>: <message>`.
//!
//! The parenthesised prefix varies, so parsing starts after the first `)`
//! when the line opens with `(`, and accepts a line that starts with the
//! month too. The year is not in the log; see [`crate::years`].

/// A log timestamp without its year, in the endpoint's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogStamp {
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// The parsed start of a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHeader<'a> {
    pub stamp: LogStamp,
    pub thread: Option<&'a str>,
    pub component: Option<&'a str>,
    pub message: &'a str,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Parses a log line's header. Returns `None` when the line has no valid
/// timestamp, which is normal for continuation lines.
pub fn parse_header(line: &str) -> Option<LogHeader<'_>> {
    let rest = line.trim_start_matches('\u{feff}').trim_start();
    let rest = match rest.strip_prefix('(') {
        Some(_) => rest.get(rest.find(')')? + 1..)?.trim_start(),
        None => rest,
    };

    let mut fields = rest.split_whitespace();
    let month_name = fields.next()?;
    let day_text = fields.next()?;
    let time_text = fields.next()?;
    let after_time = rest.get(rest.find(time_text)? + time_text.len()..)?;

    let month = month_number(month_name)?;
    let day: u32 = day_text.parse().ok().filter(|day| (1..=31).contains(day))?;
    let stamp = parse_clock(time_text).map(|(hour, minute, second)| LogStamp {
        month,
        day,
        hour,
        minute,
        second,
    })?;

    let after_time = after_time.trim_start();
    let (thread, after_thread) = match after_time.strip_prefix('[') {
        Some(inner) => {
            let close = inner.find(']')?;
            (
                Some(&inner[..close]),
                inner[close + 1..].trim_start_matches(':').trim_start(),
            )
        }
        None => (None, after_time.trim_start_matches(':').trim_start()),
    };

    // The component is the first `Name::Method` (or `Name`) before ": ".
    let (component, message) = match after_thread.find(": ") {
        Some(colon) if !after_thread[..colon].contains(' ') => {
            (Some(&after_thread[..colon]), &after_thread[colon + 2..])
        }
        _ => (None, after_thread),
    };
    Some(LogHeader {
        stamp,
        thread,
        component,
        message,
    })
}

fn month_number(name: &str) -> Option<u32> {
    let lower = name.get(..3)?.to_ascii_lowercase();
    if name.len() != 3 && !name.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    MONTHS
        .iter()
        .position(|month| *month == lower)
        .map(|index| index as u32 + 1)
}

fn parse_clock(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(':');
    let hour: u32 = parts.next()?.parse().ok()?;
    let minute: u32 = parts.next()?.parse().ok()?;
    let second_text = parts.next()?;
    // Some builds may print fractional seconds; keep the whole seconds.
    let second: u32 = second_text.split('.').next()?.parse().ok()?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some((hour, minute, second.min(59)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_documented_shape() {
        let line = "(1284031, +0 ms) May 18 16:54:33 [5432]: Query::LookupExecute: attempting lookup with cloud";
        let header = parse_header(line).expect("header");
        assert_eq!(
            header.stamp,
            LogStamp {
                month: 5,
                day: 18,
                hour: 16,
                minute: 54,
                second: 33
            }
        );
        assert_eq!(header.thread, Some("5432"));
        assert_eq!(header.component, Some("Query::LookupExecute"));
        assert_eq!(header.message, "attempting lookup with cloud");
    }

    #[test]
    fn accepts_single_digit_day_and_padding() {
        let header = parse_header("(9, +15 ms) Jan  2 00:00:01 [77]: X::Y: z").expect("header");
        assert_eq!(header.stamp.day, 2);
        assert_eq!(header.stamp.month, 1);
    }

    #[test]
    fn accepts_line_without_counter_prefix() {
        let header = parse_header("Dec 31 23:59:59 [1]: TetraUpdater::Run: start").expect("header");
        assert_eq!(header.stamp.month, 12);
    }

    #[test]
    fn rejects_lines_without_timestamp() {
        assert!(parse_header("").is_none());
        assert!(parse_header("    continuation of a message").is_none());
        assert!(parse_header("(1, +0 ms) Foo 18 16:54:33 [1]: x").is_none());
        assert!(parse_header("(1, +0 ms) May 32 16:54:33 [1]: x").is_none());
        assert!(parse_header("(1, +0 ms) May 18 25:54:33 [1]: x").is_none());
        assert!(parse_header("(1, +0 ms").is_none());
    }

    proptest! {
        #[test]
        fn never_panics(line in "\\PC*") {
            let _ = parse_header(&line);
        }

        #[test]
        fn round_trips_valid_headers(
            month in 1u32..=12, day in 1u32..=31, hour in 0u32..24, minute in 0u32..60,
            second in 0u32..60, thread in 0u32..100000, message in "[a-z ]{0,40}",
        ) {
            let line = format!(
                "(1, +0 ms) {} {day} {hour:02}:{minute:02}:{second:02} [{thread}]: A::B: {message}",
                ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec"][month as usize - 1],
            );
            let header = parse_header(&line).expect("valid header parses");
            prop_assert_eq!(header.stamp, LogStamp { month, day, hour, minute, second });
            let thread_text = thread.to_string();
            prop_assert_eq!(header.thread, Some(thread_text.as_str()));
            prop_assert_eq!(header.message, message.as_str());
        }
    }
}
