//! Parameter sweeps of `tarjama bench` (`--sweep KEY=V1,V2,…`): every
//! combination of the values (the cartesian product, the first key varying
//! slowest) runs as its own child `tarjama bench` process, because rayon's
//! global pool and candle's `RAYON_NUM_THREADS` are fixed once per process
//! and the peak RSS (`VmHWM`) never goes down: in one process the second
//! thread count and every later peak would be wrong. The children's JSON
//! reports are collected into `PREFIX.csv` and `PREFIX.json` (with the
//! machine, the date and the version) and drawn into `PREFIX.svg`: target
//! tokens/s against batch size, one line per (threads, beam, dtype). The
//! files are rewritten after every combination, so an interrupted sweep
//! keeps what it measured.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::BenchReport;

/// What a sweep can vary: each sets one `tarjama bench` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Key {
    Batch,
    Threads,
    Beam,
    Dtype,
}

/// `--dtype`'s values.
pub const DTYPES: [&str; 4] = ["f32", "f16", "bf16", "int8"];

impl Key {
    pub const ALL: [Key; 4] = [Key::Batch, Key::Threads, Key::Beam, Key::Dtype];

    pub fn name(self) -> &'static str {
        match self {
            Key::Batch => "batch",
            Key::Threads => "threads",
            Key::Beam => "beam",
            Key::Dtype => "dtype",
        }
    }

    /// The `tarjama bench` option a value of this key is passed as.
    pub fn option(self) -> &'static str {
        match self {
            Key::Batch => "--batch-size",
            Key::Threads => "--threads",
            Key::Beam => "--beam",
            Key::Dtype => "--dtype",
        }
    }

    /// The value checked and normalised ("08" → "8"), or why not.
    fn parse_value(self, v: &str) -> Result<String, String> {
        if self == Key::Dtype {
            return match DTYPES.iter().find(|d| d.eq_ignore_ascii_case(v)) {
                Some(d) => Ok(d.to_string()),
                None => Err(format!("dtype {v:?} is not one of {}", DTYPES.join(", "))),
            };
        }
        match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n.to_string()),
            _ => Err(format!(
                "{} {v:?} is not a whole number of at least 1",
                self.name()
            )),
        }
    }
}

/// One `KEY=V1,V2,…`: a key and its values, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    pub key: Key,
    pub values: Vec<String>,
}

impl FromStr for Axis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let keys = Key::ALL.map(Key::name).join(", ");
        let Some((name, list)) = s.split_once('=') else {
            return Err(format!("expected KEY=V1,V2,… with KEY one of {keys}"));
        };
        let name = name.trim();
        let key = Key::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("unknown key {name:?}: the keys are {keys}"))?;
        if list.trim().is_empty() {
            return Err(format!("{} has no values", key.name()));
        }
        let mut values = Vec::new();
        for v in list.split(',').map(str::trim) {
            if v.is_empty() {
                return Err(format!("{}: an empty value in {list:?}", key.name()));
            }
            let v = key.parse_value(v)?;
            if values.contains(&v) {
                return Err(format!("{}: {v} is given twice", key.name()));
            }
            values.push(v);
        }
        Ok(Axis { key, values })
    }
}

/// Refuses a key given twice (`--sweep batch=1 --sweep batch=8`): which
/// one was meant is not clear.
pub fn check_axes(axes: &[Axis]) -> Result<(), String> {
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.key == a.key) {
            return Err(format!(
                "{} is swept twice; give its values once, comma-separated",
                a.key.name()
            ));
        }
    }
    Ok(())
}

/// The cartesian product of the axes' values, the first axis varying
/// slowest (as nested loops in the order given).
pub fn combinations(axes: &[Axis]) -> Vec<Vec<(Key, String)>> {
    let mut out: Vec<Vec<(Key, String)>> = vec![Vec::new()];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((axis.key, v.clone()));
                    c
                })
            })
            .collect();
    }
    out
}

/// Where the sweep ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// `/proc/cpuinfo`'s "model name" (absent on CPUs that do not give one).
    pub cpu_model: Option<String>,
    /// Cores the OS offers this process.
    pub cores: usize,
    /// The native kernels' tier (as `tarjama info` shows it) and the CPU
    /// features they look for that this CPU has.
    pub cpu_isa: Option<String>,
    pub cpu_features: Vec<String>,
    /// `/proc/loadavg` (1, 5, 15 min) before the first run and after the
    /// last: other work on the machine slows every number down.
    pub load_average_before: Option<[f64; 3]>,
    pub load_average_after: Option<[f64; 3]>,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_isa: crate::marian::selected_isa()
                .ok()
                .map(|i| i.name().to_string()),
            cpu_features: crate::marian::found_features()
                .into_iter()
                .map(str::to_string)
                .collect(),
            load_average_before: load_average(),
            load_average_after: None,
        }
    }
}

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// `PREFIX.json`: the sweep and one full bench report per combination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sweep {
    pub tarjama_version: String,
    /// UTC, RFC 3339, when the sweep started.
    pub date: String,
    /// The command line, for rerunning.
    pub command: String,
    pub machine: Machine,
    pub axes: Vec<Axis>,
    /// In the order run; each report's `batch_size`, `threads`, `beam` and
    /// `dtype` are its combination's values (checked).
    pub rows: Vec<BenchReport>,
}

impl std::fmt::Display for Sweep {
    /// The table `tarjama bench --sweep` prints: one line per run.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "batch threads beam dtype  target tok/s  sentences/s  peak RSS MB"
        )?;
        for r in &self.rows {
            write!(
                f,
                "\n{:>5} {:>7} {:>4} {:<5} {:>13.1} {:>12.2} {:>12}",
                r.batch_size,
                r.rayon_threads,
                r.beam,
                r.dtype,
                r.tokens_per_second,
                r.sentences_per_second,
                r.peak_rss_mb.map_or("?".into(), |m| format!("{m:.0}"))
            )?;
        }
        Ok(())
    }
}

/// What to run.
pub struct SweepSpec {
    /// The `tarjama` binary.
    pub exe: PathBuf,
    /// `bench` and its options, without the swept ones, `--json` or `--sweep`.
    pub base_args: Vec<OsString>,
    pub axes: Vec<Axis>,
    pub version: String,
    pub command: String,
    /// Output files: PREFIX.csv, PREFIX.json, PREFIX.svg.
    pub prefix: PathBuf,
}

/// How a sweep ended short.
#[derive(Debug)]
pub enum SweepError {
    /// A child `tarjama bench` failed with this exit status (2: a usage
    /// error, such as a dtype the engine lacks) after printing why.
    Child {
        code: i32,
        combination: String,
    },
    Other(anyhow::Error),
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepError::Child { code, combination } => {
                write!(f, "the run with {combination} failed (exit status {code})")
            }
            SweepError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for SweepError {
    fn from(e: anyhow::Error) -> Self {
        SweepError::Other(e)
    }
}

/// `PREFIX` + `.ext` (a prefix may contain dots: "2026-11-30.opus").
pub fn output_path(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Runs every combination in order; `log` gets a line per finished
/// combination and each distinct line a child wrote on stderr (the same
/// note from every child is shown once). Returns the sweep as written.
pub fn run(spec: &SweepSpec, log: &mut dyn FnMut(&str)) -> Result<Sweep, SweepError> {
    let combos = combinations(&spec.axes);
    let mut sweep = Sweep {
        tarjama_version: spec.version.clone(),
        date: utc_now(),
        command: spec.command.clone(),
        machine: Machine::detect(),
        axes: spec.axes.clone(),
        rows: Vec::new(),
    };
    if let Some(dir) = spec.prefix.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    let tmp = tempfile::tempdir().context("temporary folder")?;
    let mut seen = std::collections::HashSet::new();
    for (i, combo) in combos.iter().enumerate() {
        let label = combo
            .iter()
            .map(|(k, v)| format!("{} {v}", k.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let json = tmp.path().join(format!("{i}.json"));
        let mut cmd = Command::new(&spec.exe);
        cmd.args(&spec.base_args);
        for (k, v) in combo {
            cmd.args([k.option(), v]);
        }
        cmd.arg("--json").arg(&json);
        let out = cmd
            .output()
            .with_context(|| format!("running {}", spec.exe.display()))?;
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            if !out.status.success() || seen.insert(line.to_string()) {
                log(line);
            }
        }
        if !out.status.success() {
            return Err(SweepError::Child {
                code: out.status.code().unwrap_or(1),
                combination: label,
            });
        }
        let text = std::fs::read_to_string(&json).context("the child's report")?;
        let report: BenchReport =
            serde_json::from_str(&text).context("the child's report does not parse")?;
        check_report(&report, combo).map_err(anyhow::Error::msg)?;
        log(&format!(
            "[{}/{}] {label}: {:.1} target tokens/s, {:.2} sentences/s, peak RSS {}",
            i + 1,
            combos.len(),
            report.tokens_per_second,
            report.sentences_per_second,
            report
                .peak_rss_mb
                .map_or("unknown".to_string(), |m| format!("{m:.0} MB"))
        ));
        sweep.rows.push(report);
        sweep.machine.load_average_after = load_average();
        write_outputs(&sweep, &spec.prefix)?;
    }
    Ok(sweep)
}

/// The child ran what was asked: a thread count that did not take (a pool
/// built before the option was read) would make the sweep a lie.
fn check_report(r: &BenchReport, combo: &[(Key, String)]) -> Result<(), String> {
    for (k, v) in combo {
        let got = match k {
            Key::Batch => r.batch_size.to_string(),
            Key::Beam => r.beam.to_string(),
            Key::Dtype => r.dtype.clone(),
            Key::Threads if r.rayon_threads != r.threads => {
                return Err(format!(
                    "threads {v}: candle used {} threads and rayon {}",
                    r.threads, r.rayon_threads
                ));
            }
            Key::Threads => r.rayon_threads.to_string(),
        };
        if &got != v {
            return Err(format!("asked for {} {v}, the run reports {got}", k.name()));
        }
    }
    Ok(())
}

/// Writes PREFIX.csv, PREFIX.json and PREFIX.svg.
pub fn write_outputs(sweep: &Sweep, prefix: &Path) -> Result<()> {
    let write = |ext: &str, text: String| {
        let path = output_path(prefix, ext);
        std::fs::write(&path, text).with_context(|| path.display().to_string())
    };
    write("csv", to_csv(sweep))?;
    write(
        "json",
        serde_json::to_string_pretty(sweep).expect("serializable") + "\n",
    )?;
    write("svg", to_svg(sweep)?)
}

/// The CSV's columns, one row per combination.
pub const CSV_COLUMNS: [&str; 21] = [
    "batch_size",
    "threads",
    "beam",
    "dtype",
    "engine",
    "isa",
    "sentences",
    "new_tokens_per_sentence",
    "target_tokens",
    "seconds",
    "tokens_per_second",
    "sentences_per_second",
    "encoder_s",
    "cross_kv_s",
    "decoder_s",
    "projection_s",
    "pick_s",
    "reorder_s",
    "search_s",
    "decode_steps",
    "peak_rss_mb",
];

/// A CSV field, quoted where it has to be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn to_csv(sweep: &Sweep) -> String {
    let mut out = CSV_COLUMNS.join(",") + "\n";
    for r in &sweep.rows {
        let s = &r.split;
        let fields = [
            r.batch_size.to_string(),
            r.rayon_threads.to_string(),
            r.beam.to_string(),
            r.dtype.clone(),
            r.engine.clone(),
            r.isa.clone().unwrap_or_default(),
            r.sentences.to_string(),
            r.new_tokens_per_sentence.to_string(),
            r.target_tokens.to_string(),
            format!("{:.4}", r.seconds),
            format!("{:.2}", r.tokens_per_second),
            format!("{:.3}", r.sentences_per_second),
            format!("{:.4}", s.encoder_s),
            format!("{:.4}", s.cross_kv_s),
            format!("{:.4}", s.decoder_s),
            format!("{:.4}", s.projection_s),
            format!("{:.4}", s.pick_s),
            format!("{:.4}", s.reorder_s),
            format!("{:.4}", s.search_s),
            s.decode_steps.to_string(),
            r.peak_rss_mb.map_or(String::new(), |m| format!("{m:.1}")),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out += &line.join(",");
        out.push('\n');
    }
    out
}

/// The chart's series: one per (threads, beam, dtype), in order of first
/// appearance, each with its (batch, tokens/s) points sorted by batch.
pub fn series(sweep: &Sweep) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in &sweep.rows {
        let label = format!(
            "{} thread{}, beam {}, {}",
            r.rayon_threads,
            if r.rayon_threads == 1 { "" } else { "s" },
            r.beam,
            r.dtype
        );
        let point = (r.batch_size as f64, r.tokens_per_second);
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, points)) => points.push(point),
            None => out.push((label, vec![point])),
        }
    }
    for (_, points) in &mut out {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The x axis label and the y axis label (the tests look for them).
pub const X_LABEL: &str = "batch size (sentences, log scale)";
pub const Y_LABEL: &str = "target tokens/s";

/// Line colours (matplotlib's "tab10", readable on white), reused in turn.
const COLORS: [(u8, u8, u8); 10] = [
    (0x1f, 0x77, 0xb4),
    (0xff, 0x7f, 0x0e),
    (0x2c, 0xa0, 0x2c),
    (0xd6, 0x27, 0x28),
    (0x94, 0x67, 0xbd),
    (0x8c, 0x56, 0x4b),
    (0xe3, 0x77, 0xc2),
    (0x7f, 0x7f, 0x7f),
    (0xbc, 0xbd, 0x22),
    (0x17, 0xbe, 0xcf),
];

/// The SVG chart: target tokens/s against batch size (log 2 axis, ticks at
/// the batch sizes run), one line with markers per series, a legend, and
/// the machine, date and workload in the titles.
pub fn to_svg(sweep: &Sweep) -> Result<String> {
    use plotters::prelude::*;

    let lines = series(sweep);
    let mut batches: Vec<f64> = sweep.rows.iter().map(|r| r.batch_size as f64).collect();
    batches.sort_by(f64::total_cmp);
    batches.dedup();
    let (lo, hi) = match (batches.first(), batches.last()) {
        (Some(&lo), Some(&hi)) => (lo / 1.25, hi * 1.25),
        _ => (0.8, 1.25),
    };
    let top = sweep
        .rows
        .iter()
        .map(|r| r.tokens_per_second)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.12;
    let m = &sweep.machine;
    let title = format!(
        "tarjama bench sweep: {}{}, {}",
        m.cpu_model.as_deref().unwrap_or("unknown CPU"),
        m.cpu_isa
            .as_deref()
            .map_or(String::new(), |t| format!(" ({t})")),
        sweep.date.get(..10).unwrap_or(&sweep.date)
    );
    let workload = sweep.rows.first().map_or(String::new(), |r| {
        format!(
            "{}, {} sentences × {} new tokens; tarjama {}; {} cores, load average {}",
            r.model,
            r.sentences,
            r.new_tokens_per_sentence,
            sweep.tarjama_version,
            m.cores,
            m.load_average_before
                .map_or("unknown".to_string(), |l| format!("{:.1}", l[0]))
        )
    });

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 620)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the chart: {e}");
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (header, body) = root.split_vertically(72);
        header
            .draw_text(
                &title,
                &("sans-serif", 26).into_font().color(&BLACK),
                (24, 12),
            )
            .map_err(|e| err(&e))?;
        let grey = ("sans-serif", 17).into_font().color(&BLACK.mix(0.7));
        header
            .draw_text(&workload, &grey, (24, 44))
            .map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&body)
            .margin(16)
            .margin_top(8)
            .margin_right(28)
            .x_label_area_size(56)
            .y_label_area_size(84)
            .build_cartesian_2d((lo..hi).log_scale().with_key_points(batches), 0.0..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(X_LABEL)
            .y_desc(Y_LABEL)
            .x_label_formatter(&|b| format!("{b:.0}"))
            .y_label_formatter(&|t| format!("{t:.0}"))
            .max_light_lines(0)
            .bold_line_style(BLACK.mix(0.12))
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 19))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, (label, points)) in lines.into_iter().enumerate() {
            let (r, g, b) = COLORS[i % COLORS.len()];
            let color = RGBColor(r, g, b);
            chart
                .draw_series(LineSeries::new(points, color.filled().stroke_width(2)).point_size(4))
                .map_err(|e| err(&e))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 17))
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// Now in UTC as RFC 3339 ("2026-11-30T11:40:21Z"), without a date crate.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    let mut s = String::new();
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    );
    s
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_and_normalise() {
        let a: Axis = "batch=1, 08,32".parse().unwrap();
        assert_eq!(a.key, Key::Batch);
        assert_eq!(a.values, ["1", "8", "32"]);
        let d: Axis = "DType=F32,int8".parse().unwrap();
        assert_eq!(
            (d.key, d.values),
            (Key::Dtype, vec!["f32".into(), "int8".into()])
        );
    }

    #[test]
    fn bad_axes_say_why() {
        let err = |s: &str| s.parse::<Axis>().unwrap_err();
        assert!(err("batch").contains("KEY=V1,V2"));
        assert!(err("width=1,2").contains("unknown key \"width\""));
        assert!(err("batch=").contains("batch has no values"));
        assert!(err("batch=1,,2").contains("empty value"));
        assert!(err("batch=0").contains("at least 1"));
        assert!(err("beam=x").contains("\"x\" is not a whole number"));
        assert!(err("dtype=f64").contains("f32, f16, bf16, int8"));
        assert!(err("threads=2,2").contains("twice"));
        let twice = ["batch=1".parse().unwrap(), "batch=2".parse().unwrap()];
        assert!(
            check_axes(&twice)
                .unwrap_err()
                .contains("batch is swept twice")
        );
    }

    #[test]
    fn combinations_are_the_product_first_key_slowest() {
        let axes: Vec<Axis> = ["threads=1,2", "beam=1,4", "batch=8"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let c = combinations(&axes);
        let flat: Vec<String> = c
            .iter()
            .map(|c| {
                c.iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(flat, ["1 1 8", "1 4 8", "2 1 8", "2 4 8"]);
        assert_eq!(combinations(&[]), vec![Vec::new()]);
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // 2026-11-30
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("avx2"), "avx2");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
