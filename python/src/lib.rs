//! Python bindings of tarjama (the `tarjama._tarjama` extension module).
//!
//! Thin on purpose: every result comes from the library's own code paths
//! (`hub::resolve`, `Engine::load`, `Engine::translate`, `Document::parse`,
//! `FormatWriter`, `Staged` + `commit`), so a Python job gets what the CLI
//! gets. No Rust panic crosses into Python: every call that runs library
//! code catches unwinding and raises `RuntimeError` instead.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use tarjama::document::Document;
use tarjama::hub::{ModelSpec, resolve};
use tarjama::marian::{Backend, Precision};
use tarjama::output::{Format, FormatWriter, Staged, commit};
use tarjama::translate::{BatchOptions, Engine, EngineOptions, thread_shares};

/// Sentences translated per call of the engine in `translate_document`, as
/// the CLI's default `--window`.
const WINDOW: usize = tarjama::pipeline::DEFAULT_WINDOW;

/// Runs `f`, turning a panic into a `RuntimeError`.
fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "tarjama: internal error (panic): {msg}"
            )))
        }
    }
}

fn runtime(e: anyhow::Error) -> PyErr {
    PyRuntimeError::new_err(format!("{e:#}"))
}

fn count(name: &str, v: Option<i64>, min: i64) -> PyResult<Option<usize>> {
    match v {
        None => Ok(None),
        Some(n) if n < min => Err(PyValueError::new_err(format!(
            "{name} must be at least {min}, not {n}"
        ))),
        Some(n) => Ok(Some(n as usize)),
    }
}

/// The translation of one source sentence.
#[pyclass(module = "tarjama", frozen, get_all)]
#[derive(Clone)]
pub struct Translation {
    /// The English text.
    text: String,
    /// Mean log-probability per generated token (None unless return_scores).
    score: Option<f32>,
    /// Encoder input ids with `</s>` (None unless return_ids).
    src_ids: Option<Vec<u32>>,
    /// Generated ids with the final `</s>` (None unless return_ids).
    tgt_ids: Option<Vec<u32>>,
    /// Log-probability of each of tgt_ids (None unless return_ids).
    tgt_logprobs: Option<Vec<f32>>,
    /// (source word, target word) pairs (None unless return_alignment).
    alignment: Option<Vec<(usize, usize)>>,
    /// With num_hypotheses > 1: the next best (text, score) pairs, best
    /// first (the CLI's `--n-best` alternatives); empty otherwise.
    alternatives: Vec<(String, f32)>,
}

#[pymethods]
impl Translation {
    fn __repr__(&self) -> String {
        match self.score {
            Some(s) => format!("Translation(text={:?}, score={s})", self.text),
            None => format!("Translation(text={:?})", self.text),
        }
    }

    fn __str__(&self) -> String {
        self.text.clone()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.downcast::<Translation>().is_ok_and(|o| {
            let o = o.get();
            o.text == self.text
                && o.score == self.score
                && o.src_ids == self.src_ids
                && o.tgt_ids == self.tgt_ids
                && o.tgt_logprobs == self.tgt_logprobs
                && o.alignment == self.alignment
                && o.alternatives == self.alternatives
        })
    }
}

/// A sentence of a document: its text and where it is.
#[pyclass(module = "tarjama", frozen, get_all)]
#[derive(Clone)]
pub struct Sentence {
    text: String,
    /// Byte offsets of `text` in the document (UTF-8 for a str; the
    /// original encoding's for bytes).
    start: usize,
    end: usize,
    /// Paragraph number and sentence number within it (from 0).
    para: usize,
    sent: usize,
}

#[pymethods]
impl Sentence {
    fn __repr__(&self) -> String {
        format!(
            "Sentence(para={}, sent={}, start={}, end={}, text={:?})",
            self.para, self.sent, self.start, self.end, self.text
        )
    }
}

/// One source sentence and its translation, located in its document: the
/// records of the CLI's JSONL output. The QA flags are computed from `src`
/// and `tgt` (never taken as given), so a record built or edited in Python
/// gets the CLI's flags.
#[pyclass(module = "tarjama", frozen)]
#[derive(Clone)]
pub struct Record {
    inner: tarjama::output::Record,
}

#[pymethods]
impl Record {
    #[new]
    #[pyo3(signature = (*, doc, para, sent, start, end, src, tgt, score, src_ids=None, tgt_ids=None, tgt_logprobs=None, alignment=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        doc: String,
        para: usize,
        sent: usize,
        start: usize,
        end: usize,
        src: String,
        tgt: String,
        score: f32,
        src_ids: Option<Vec<u32>>,
        tgt_ids: Option<Vec<u32>>,
        tgt_logprobs: Option<Vec<f32>>,
        alignment: Option<String>,
    ) -> Record {
        Record {
            inner: tarjama::output::Record {
                doc,
                para,
                sent,
                start,
                end,
                flags: tarjama::qa::check(&src, &tgt),
                src,
                tgt,
                score,
                src_ids,
                tgt_ids,
                tgt_logprobs,
                alignment,
                alternatives: None,
            },
        }
    }

    #[getter]
    fn doc(&self) -> &str {
        &self.inner.doc
    }
    #[getter]
    fn para(&self) -> usize {
        self.inner.para
    }
    #[getter]
    fn sent(&self) -> usize {
        self.inner.sent
    }
    #[getter]
    fn start(&self) -> usize {
        self.inner.start
    }
    #[getter]
    fn end(&self) -> usize {
        self.inner.end
    }
    #[getter]
    fn src(&self) -> &str {
        &self.inner.src
    }
    #[getter]
    fn tgt(&self) -> &str {
        &self.inner.tgt
    }
    #[getter]
    fn score(&self) -> f32 {
        self.inner.score
    }
    /// The QA flags' names (`numbers`, `latin`, `length`, `loop`,
    /// `untranslated`); empty when nothing looks wrong.
    #[getter]
    fn flags(&self) -> Vec<&'static str> {
        self.inner.flags.iter().map(|f| f.name()).collect()
    }
    #[getter]
    fn src_ids(&self) -> Option<Vec<u32>> {
        self.inner.src_ids.clone()
    }
    #[getter]
    fn tgt_ids(&self) -> Option<Vec<u32>> {
        self.inner.tgt_ids.clone()
    }
    #[getter]
    fn tgt_logprobs(&self) -> Option<Vec<f32>> {
        self.inner.tgt_logprobs.clone()
    }
    #[getter]
    fn alignment(&self) -> Option<String> {
        self.inner.alignment.clone()
    }

    /// The record as one line of the CLI's JSONL (no newline).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// The record as a dict (the JSONL object's keys; absent ids are left out).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let r = &self.inner;
        d.set_item("doc", &r.doc)?;
        d.set_item("para", r.para)?;
        d.set_item("sent", r.sent)?;
        d.set_item("start", r.start)?;
        d.set_item("end", r.end)?;
        d.set_item("src", &r.src)?;
        d.set_item("tgt", &r.tgt)?;
        d.set_item("score", r.score)?;
        d.set_item("flags", self.flags())?;
        if let Some(v) = &r.src_ids {
            d.set_item("src_ids", v)?;
        }
        if let Some(v) = &r.tgt_ids {
            d.set_item("tgt_ids", v)?;
        }
        if let Some(v) = &r.tgt_logprobs {
            d.set_item("tgt_logprobs", v)?;
        }
        if let Some(v) = &r.alignment {
            d.set_item("alignment", v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Record(doc={:?}, para={}, sent={}, start={}, end={}, tgt={:?})",
            self.inner.doc,
            self.inner.para,
            self.inner.sent,
            self.inner.start,
            self.inner.end,
            self.inner.tgt
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<Record>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }
}

/// Search options that are fixed when an engine is loaded (floats as bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
struct SearchKey {
    beam: Option<usize>,
    max_new_tokens: Option<usize>,
    alignment: bool,
    length_penalty: Option<u64>,
    repetition_penalty: Option<u64>,
    no_repeat_ngram_size: Option<usize>,
    max_length_factor: Option<u64>,
    n_best: usize,
}

/// The decoding keyword arguments of `translate_batch`/`translate_document`.
#[allow(clippy::too_many_arguments)]
fn search_key(
    beam_size: Option<i64>,
    max_new_tokens: Option<i64>,
    alignment: bool,
    length_penalty: Option<f64>,
    repetition_penalty: Option<f64>,
    no_repeat_ngram_size: Option<i64>,
    max_length_factor: Option<f64>,
) -> PyResult<SearchKey> {
    let finite = |name: &str, v: Option<f64>, positive: bool| -> PyResult<Option<u64>> {
        match v {
            Some(x) if !x.is_finite() || (positive && x <= 0.0) => {
                Err(PyValueError::new_err(format!(
                    "{name} must be a finite{} number, not {x}",
                    if positive { " positive" } else { "" }
                )))
            }
            _ => Ok(v.map(f64::to_bits)),
        }
    };
    Ok(SearchKey {
        beam: count("beam_size", beam_size, 1)?,
        max_new_tokens: count("max_new_tokens", max_new_tokens, 1)?,
        alignment,
        length_penalty: finite("length_penalty", length_penalty, false)?,
        repetition_penalty: finite("repetition_penalty", repetition_penalty, true)?,
        no_repeat_ngram_size: count("no_repeat_ngram_size", no_repeat_ngram_size, 0)?,
        max_length_factor: finite("max_length_factor", max_length_factor, true)?,
        n_best: 1,
    })
}

/// A Marian model loaded once, translating batches of sentences.
#[pyclass(module = "tarjama", frozen)]
pub struct Translator {
    dir: PathBuf,
    base: EngineOptions,
    batch: BatchOptions,
    device: String,
    dtype: String,
    /// One engine per combination of load-time search options (beam, limit,
    /// alignment are fixed by `Engine::load`).
    engines: Mutex<HashMap<SearchKey, Arc<Engine>>>,
}

fn backend_for(device: &str, dtype: &str) -> PyResult<(candle_core::Device, Backend)> {
    use candle_core::DType;
    let dev = match device.to_ascii_lowercase().as_str() {
        "cpu" => candle_core::Device::Cpu,
        "cuda" => candle_core::Device::new_cuda(0).map_err(|e| {
            PyRuntimeError::new_err(format!(
                "cannot use device \"cuda\": {e} (build tarjama with the cuda feature)"
            ))
        })?,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown device {other:?} (\"cpu\" or \"cuda\")"
            )));
        }
    };
    let cpu = dev.is_cpu();
    // As the CLI without --engine: native on the CPU, candle on CUDA.
    let backend = match (cpu, dtype.to_ascii_lowercase().as_str()) {
        (true, "f32") => Backend::Native(Precision::F32),
        (true, "bf16") => Backend::Native(Precision::Bf16),
        (true, "int8") => Backend::Native(Precision::Int8),
        (_, "f16") => Backend::Candle(DType::F16),
        (false, "f32") => Backend::Candle(DType::F32),
        (false, "bf16") => Backend::Candle(DType::BF16),
        (false, "int8") => {
            return Err(PyValueError::new_err(
                "int8 runs on the native CPU engine only (device=\"cpu\")",
            ));
        }
        (_, other) => {
            return Err(PyValueError::new_err(format!(
                "unknown dtype {other:?} (\"f32\", \"bf16\", \"int8\" or \"f16\")"
            )));
        }
    };
    Ok((dev, backend))
}

impl Translator {
    fn engine(&self, py: Python<'_>, key: SearchKey) -> PyResult<Arc<Engine>> {
        if let Some(e) = self.engines.lock().expect("not poisoned").get(&key) {
            return Ok(e.clone());
        }
        let opts = EngineOptions {
            beam: key.beam,
            max_new_tokens: key.max_new_tokens,
            word_alignment: key.alignment,
            length_penalty: key.length_penalty.map(f64::from_bits),
            repetition_penalty: key.repetition_penalty.map(f64::from_bits),
            no_repeat_ngram_size: key.no_repeat_ngram_size,
            max_length_factor: key.max_length_factor.map(f64::from_bits),
            n_best: key.n_best.max(1),
            ..self.base.clone()
        };
        let dir = self.dir.clone();
        let engine = py.allow_threads(|| guard(|| Engine::load(&dir, &opts).map_err(runtime)))?;
        let engine = Arc::new(engine);
        self.engines
            .lock()
            .expect("not poisoned")
            .entry(key)
            .or_insert(engine.clone());
        Ok(engine)
    }

    fn run(
        &self,
        py: Python<'_>,
        sources: Vec<String>,
        key: SearchKey,
    ) -> PyResult<Vec<tarjama::translate::Translation>> {
        let engine = self.engine(py, key)?;
        let batch = &self.batch;
        let mut out = Vec::with_capacity(sources.len());
        // A window at a time, as the CLI; between windows the GIL is taken
        // back to let Ctrl-C (KeyboardInterrupt) stop a long call.
        for chunk in sources.chunks(WINDOW.max(1)) {
            let t = py.allow_threads(|| {
                guard(|| {
                    let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    let (t, _stats) = engine.translate(&refs, batch, &|_| {}).map_err(runtime)?;
                    Ok(t)
                })
            })?;
            out.extend(t);
            py.check_signals()?;
        }
        Ok(out)
    }
}

fn text_of(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = v.downcast::<PyString>() {
        return s.extract::<String>();
    }
    Err(PyTypeError::new_err(format!(
        "sources must be str, not {}",
        v.get_type().name()?
    )))
}

#[pymethods]
impl Translator {
    /// Loads a model: a local folder or a Hugging Face Hub id (resolved as
    /// the CLI's --model: the Hub cache first, then a download unless offline).
    #[new]
    #[pyo3(signature = (model, *, device="cpu", dtype="f32", threads=0, workers=1, offline=false, batch_tokens=None, revision=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: PathBuf,
        device: &str,
        dtype: &str,
        threads: i64,
        workers: i64,
        offline: bool,
        batch_tokens: Option<i64>,
        revision: Option<String>,
    ) -> PyResult<Translator> {
        if threads < 0 {
            return Err(PyValueError::new_err(format!(
                "threads must be 0 (all cores) or more, not {threads}"
            )));
        }
        if workers < 1 {
            return Err(PyValueError::new_err(format!(
                "workers must be at least 1, not {workers}"
            )));
        }
        if let Some(n) = batch_tokens.filter(|&n| n < 1) {
            return Err(PyValueError::new_err(format!(
                "batch_tokens must be at least 1, not {n}"
            )));
        }
        let (dev, backend) = backend_for(device, dtype)?;
        let batch_tokens =
            batch_tokens.map_or_else(|| BatchOptions::default_batch_tokens(&dev), |n| n as usize);
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads as usize
        };
        // As the CLI: the process's global rayon pool (tokenisation; candle's
        // matrix products) gets `threads`, unless RAYON_NUM_THREADS says
        // otherwise; the first Translator of a process sizes it, later ones
        // leave it as it is (only their own worker pools follow `threads`).
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build_global();
        }
        let spec = ModelSpec {
            model: model.to_string_lossy().into_owned(),
            revision,
            offline: offline || tarjama::hub::offline_from_env(),
        };
        let dir = py.allow_threads(|| {
            guard(|| resolve(&spec).map_err(|e| PyOSError::new_err(e.to_string())))
        })?;
        let t = Translator {
            dir,
            base: EngineOptions {
                device: dev,
                backend,
                ..EngineOptions::default()
            },
            batch: BatchOptions {
                batch_tokens,
                threads: Some(threads),
                workers: workers as usize,
            },
            device: device.to_ascii_lowercase(),
            dtype: dtype.to_ascii_lowercase(),
            engines: Mutex::new(HashMap::new()),
        };
        // Load now so that a bad model fails here, not at the first batch.
        t.engine(py, SearchKey::default())?;
        Ok(t)
    }

    /// The model folder in use.
    #[getter]
    fn model_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    #[getter]
    fn device(&self) -> &str {
        &self.device
    }

    #[getter]
    fn dtype(&self) -> &str {
        &self.dtype
    }

    /// Threads in all (the resolved count: all cores for threads=0).
    #[getter]
    fn threads(&self) -> usize {
        self.batch.total_threads()
    }

    #[getter]
    fn workers(&self) -> usize {
        self.batch.workers
    }

    /// The threads of each worker, as the CLI reports them.
    #[getter]
    fn worker_threads(&self) -> Vec<usize> {
        thread_shares(self.batch.total_threads(), self.batch.workers)
    }

    /// The model's default beam size (generation_config.json).
    #[getter]
    fn default_beam_size(&self, py: Python<'_>) -> PyResult<usize> {
        let e = self.engine(py, SearchKey::default())?;
        Ok(e.generation().num_beams)
    }

    /// Translates `sources`, one Translation per source in order.
    #[pyo3(signature = (sources, *, beam_size=None, max_new_tokens=None, return_scores=true, return_alignment=false, return_ids=false, length_penalty=None, repetition_penalty=None, no_repeat_ngram_size=None, max_length_factor=None, num_hypotheses=1))]
    #[allow(clippy::too_many_arguments)]
    fn translate_batch(
        &self,
        py: Python<'_>,
        sources: &Bound<'_, PyAny>,
        beam_size: Option<i64>,
        max_new_tokens: Option<i64>,
        return_scores: bool,
        return_alignment: bool,
        return_ids: bool,
        length_penalty: Option<f64>,
        repetition_penalty: Option<f64>,
        no_repeat_ngram_size: Option<i64>,
        max_length_factor: Option<f64>,
        num_hypotheses: i64,
    ) -> PyResult<Vec<Translation>> {
        if sources.is_instance_of::<PyString>() || sources.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(
                "sources must be a list of str, not a single string",
            ));
        }
        let texts: Vec<String> = sources
            .try_iter()?
            .map(|v| text_of(&v?))
            .collect::<PyResult<_>>()?;
        let key = search_key(
            beam_size,
            max_new_tokens,
            return_alignment,
            length_penalty,
            repetition_penalty,
            no_repeat_ngram_size,
            max_length_factor,
        )?;
        let key = SearchKey {
            n_best: count("num_hypotheses", Some(num_hypotheses), 1)?.unwrap_or(1),
            ..key
        };
        let out = self.run(py, texts, key)?;
        Ok(out
            .into_iter()
            .map(|t| Translation {
                text: t.text,
                score: return_scores.then_some(t.score),
                src_ids: return_ids.then_some(t.src_ids),
                tgt_ids: return_ids.then_some(t.tgt_ids),
                tgt_logprobs: return_ids.then_some(t.tgt_logprobs),
                alignment: if return_alignment { t.alignment } else { None },
                alternatives: t
                    .alternatives
                    .into_iter()
                    .map(|a| (a.text, a.score))
                    .collect(),
            })
            .collect())
    }

    /// Segments `text` (str, or bytes in UTF-8/UTF-16 with BOM/Windows-1256/
    /// ISO-8859-6) and translates every sentence: the CLI's JSONL records.
    #[pyo3(signature = (text, name="-", *, beam_size=None, max_new_tokens=None, return_ids=false, return_alignment=false, lines=false, length_penalty=None, repetition_penalty=None, no_repeat_ngram_size=None, max_length_factor=None))]
    #[allow(clippy::too_many_arguments)]
    fn translate_document(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        name: &str,
        beam_size: Option<i64>,
        max_new_tokens: Option<i64>,
        return_ids: bool,
        return_alignment: bool,
        lines: bool,
        length_penalty: Option<f64>,
        repetition_penalty: Option<f64>,
        no_repeat_ngram_size: Option<i64>,
        max_length_factor: Option<f64>,
    ) -> PyResult<Vec<Record>> {
        let doc = document(py, text, name, lines)?;
        let key = search_key(
            beam_size,
            max_new_tokens,
            return_alignment,
            length_penalty,
            repetition_penalty,
            no_repeat_ngram_size,
            max_length_factor,
        )?;
        let sources: Vec<String> = doc.sentences().map(|s| s.text.to_string()).collect();
        let translations = self.run(py, sources, key)?;
        Ok(doc
            .sentences()
            .zip(translations)
            .map(|(s, t)| Record {
                // The CLI's own record, so both stay identical.
                inner: tarjama::pipeline::record(&doc, s, t, return_ids),
            })
            .collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "Translator({:?}, device={:?}, dtype={:?}, threads={}, workers={})",
            self.dir.display().to_string(),
            self.device,
            self.dtype,
            self.batch.total_threads(),
            self.batch.workers
        )
    }
}

/// A document from a str or bytes (decoded as the CLI decodes files).
fn document(
    py: Python<'_>,
    text: &Bound<'_, PyAny>,
    name: &str,
    lines: bool,
) -> PyResult<Document> {
    let split: fn(String, String) -> Document = if lines {
        Document::parse_lines
    } else {
        Document::parse
    };
    if let Ok(s) = text.downcast::<PyString>() {
        let s: String = s.extract()?;
        let name = name.to_owned();
        return py.allow_threads(|| guard(|| Ok(split(name, s))));
    }
    if let Ok(b) = text.downcast::<PyBytes>() {
        let bytes = b.as_bytes().to_vec();
        let name = name.to_owned();
        return py.allow_threads(|| {
            guard(|| {
                Document::decode_with(name, bytes, Default::default(), split)
                    .map_err(|e| PyValueError::new_err(e.to_string()))
            })
        });
    }
    Err(PyTypeError::new_err(format!(
        "text must be str or bytes, not {}",
        text.get_type().name()?
    )))
}

/// Splits a document into sentences (Arabic-aware, byte offsets kept), as
/// the CLI does before translating.
#[pyfunction]
#[pyo3(signature = (text, *, lines=false))]
fn segment(py: Python<'_>, text: &Bound<'_, PyAny>, lines: bool) -> PyResult<Vec<Sentence>> {
    let doc = document(py, text, "-", lines)?;
    Ok(doc
        .sentences()
        .map(|s| Sentence {
            text: s.text.to_string(),
            start: s.start,
            end: s.end,
            para: s.para,
            sent: s.sent,
        })
        .collect())
}

fn record_of(v: &Bound<'_, PyAny>) -> PyResult<tarjama::output::Record> {
    if let Ok(r) = v.downcast::<Record>() {
        return Ok(r.get().inner.clone());
    }
    if let Ok(d) = v.downcast::<PyDict>() {
        fn get<'py, T: FromPyObject<'py>>(d: &Bound<'py, PyDict>, k: &str) -> PyResult<T> {
            match d.get_item(k)? {
                Some(v) => v.extract(),
                None => Err(PyValueError::new_err(format!("record without {k:?}"))),
            }
        }
        fn opt<'py, T: FromPyObject<'py>>(d: &Bound<'py, PyDict>, k: &str) -> PyResult<Option<T>> {
            match d.get_item(k)? {
                Some(v) if !v.is_none() => Ok(Some(v.extract()?)),
                _ => Ok(None),
            }
        }
        let (src, tgt): (String, String) = (get(d, "src")?, get(d, "tgt")?);
        return Ok(tarjama::output::Record {
            doc: get(d, "doc")?,
            para: get(d, "para")?,
            sent: get(d, "sent")?,
            start: get(d, "start")?,
            end: get(d, "end")?,
            // A dict's own "flags" (e.g. from to_dict) is not trusted: its
            // text may have been edited since.
            flags: tarjama::qa::check(&src, &tgt),
            src,
            tgt,
            score: get(d, "score")?,
            src_ids: opt(d, "src_ids")?,
            tgt_ids: opt(d, "tgt_ids")?,
            tgt_logprobs: opt(d, "tgt_logprobs")?,
            alignment: opt(d, "alignment")?,
            alternatives: None,
        });
    }
    Err(PyTypeError::new_err(format!(
        "records must be tarjama.Record or dict, not {}",
        v.get_type().name()?
    )))
}

/// Writes the bilingual files of one document from its records, as the CLI
/// writes them (same bytes): `out_dir/name.html`, `.tmx`, `.tsv`, `.jsonl`,
/// `.md`, `.ar` + `.en` (moses), `.en.txt` (txt). Every file is written to a
/// temp file and renamed once all are complete. Returns the paths written.
#[pyfunction]
#[pyo3(signature = (records, out_dir, name, formats=None, *, title=None))]
fn write_outputs(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    out_dir: PathBuf,
    name: &str,
    formats: Option<Vec<String>>,
    title: Option<String>,
) -> PyResult<Vec<PathBuf>> {
    let formats: Vec<Format> = match formats {
        None => Format::FILES.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| n.parse::<Format>().map_err(PyValueError::new_err))
            .collect::<PyResult<_>>()?,
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(PyValueError::new_err(format!(
            "name must be a file name stem, not {name:?}"
        )));
    }
    let records: Vec<tarjama::output::Record> = records
        .try_iter()?
        .map(|v| record_of(&v?))
        .collect::<PyResult<_>>()?;
    let title = title.unwrap_or_else(|| name.to_string());
    let name = name.to_string();
    py.allow_threads(move || {
        guard(|| {
            write_files(&out_dir, &name, &title, &formats, &records)
                .map_err(|e| PyOSError::new_err(format!("writing to {}: {e}", out_dir.display())))
        })
    })
}

fn write_files(
    dir: &Path,
    name: &str,
    title: &str,
    formats: &[Format],
    records: &[tarjama::output::Record],
) -> std::io::Result<Vec<PathBuf>> {
    let mut staged = Vec::new();
    let mut written = Vec::new();
    for &f in formats {
        let paths = tarjama::output::paths(dir, name, f);
        let outs = paths
            .iter()
            .map(|p| Staged::new(p, "py"))
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut w = FormatWriter::new(f, outs, false);
        w.begin(title)?;
        for r in records {
            w.record(r)?;
        }
        w.end()?;
        staged.extend(w.into_inner());
        written.extend(paths);
    }
    commit(staged)?;
    Ok(written)
}

/// The formats write_outputs knows.
#[pyfunction]
fn formats() -> Vec<&'static str> {
    Format::ALL.iter().map(|f| f.name()).collect()
}

#[pymodule]
fn _tarjama(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Translator>()?;
    m.add_class::<Translation>()?;
    m.add_class::<Sentence>()?;
    m.add_class::<Record>()?;
    m.add_function(wrap_pyfunction!(segment, m)?)?;
    m.add_function(wrap_pyfunction!(write_outputs, m)?)?;
    m.add_function(wrap_pyfunction!(formats, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_MODEL", tarjama::hub::DEFAULT_MODEL)?;
    Ok(())
}
