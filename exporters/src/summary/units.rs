//! Number, byte, time and duration formatting shared by the charts and the report.

/// Unix seconds as `HH:MM:SS` (UTC).
pub fn clock(t: f64) -> String {
    let s = t.max(0.0) as i64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn date_time(t: f64) -> String {
    let secs = t.max(0.0) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02} {} UTC", clock(t))
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A duration in seconds as `1h 02m 03s`, `2m 03s` or `4.2s`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".to_string();
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60)
    }
}

/// A binary unit that keeps `max` readable: (divisor, name).
pub fn byte_unit(max: f64) -> (f64, &'static str) {
    const UNITS: [(f64, &str); 5] = [
        (1.0, "B"),
        (1024.0, "KiB"),
        (1_048_576.0, "MiB"),
        (1_073_741_824.0, "GiB"),
        (1_099_511_627_776.0, "TiB"),
    ];
    let mut chosen = UNITS[0];
    for u in UNITS {
        if max.abs() >= u.0 {
            chosen = u;
        }
    }
    chosen
}

/// Bytes as `12.3 MiB`.
pub fn bytes(v: f64) -> String {
    let (div, name) = byte_unit(v);
    if div == 1.0 {
        format!("{v:.0} {name}")
    } else {
        format!("{:.1} {name}", v / div)
    }
}

/// A number with up to one decimal.
pub fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
