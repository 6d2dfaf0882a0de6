//! What this build knows of CUDA, for `tarjama info` and `tarjama bench`:
//! whether the `cuda` feature is compiled in, and if so what candle finds on
//! GPU 0 (name, compute capability, memory) or why it finds nothing.

use serde::{Deserialize, Serialize};

/// One GPU as the driver describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GpuInfo {
    pub ordinal: usize,
    pub name: String,
    /// "9.0" for Hopper.
    pub compute_capability: String,
    pub total_mb: f64,
    /// Free now, as the driver counts it: every process's allocations
    /// (candle's cached ones included) are taken off.
    pub free_mb: f64,
}

impl GpuInfo {
    /// Device memory in use now on this GPU (all processes), in MB.
    pub fn used_mb(&self) -> f64 {
        self.total_mb - self.free_mb
    }
}

/// `tarjama info`'s CUDA section.
#[derive(Debug, Clone, Serialize)]
pub struct CudaStatus {
    /// Built with `--features cuda`.
    pub compiled: bool,
    /// GPUs the driver counts (`None` where that failed or is not compiled).
    pub devices: Option<usize>,
    /// GPU 0, opened the way `--device cuda` opens it.
    pub device: Option<GpuInfo>,
    /// Why there is no device (compiled in only).
    pub error: Option<String>,
}

impl std::fmt::Display for CudaStatus {
    /// "not compiled in (…)", "compiled in, no device found (…)" or
    /// "compiled in, 1 device; 0: NVIDIA H200 (…)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.compiled {
            return write!(f, "not compiled in (build with --features cuda)");
        }
        match &self.device {
            Some(g) => {
                let n = self.devices.unwrap_or(1);
                write!(
                    f,
                    "compiled in, {n} device{}; {}: {} (compute {}, {:.0} MB, {:.0} MB free)",
                    if n == 1 { "" } else { "s" },
                    g.ordinal,
                    g.name,
                    g.compute_capability,
                    g.total_mb,
                    g.free_mb
                )
            }
            None => write!(
                f,
                "compiled in, no device found ({})",
                self.error.as_deref().unwrap_or("unknown error")
            ),
        }
    }
}

#[cfg(feature = "cuda")]
const MB: f64 = 1024.0 * 1024.0;

/// Opens GPU 0 as `--device cuda` does (driver, context, cuBLAS), so a
/// device listed here is one candle can run on.
pub fn status() -> CudaStatus {
    #[cfg(feature = "cuda")]
    {
        use candle_core::cuda_backend::cudarc::driver::CudaContext;
        let devices = CudaContext::device_count().ok().map(|n| n.max(0) as usize);
        match candle_core::Device::new_cuda(0) {
            Ok(device) => {
                let (info, error) = match describe(&device) {
                    Some(Ok(g)) => (Some(g), None),
                    Some(Err(e)) => (None, Some(e)),
                    None => (None, Some("not a CUDA device".into())),
                };
                CudaStatus {
                    compiled: true,
                    devices,
                    device: info,
                    error,
                }
            }
            Err(e) => CudaStatus {
                compiled: true,
                devices,
                device: None,
                error: Some(error_text(&e)),
            },
        }
    }
    #[cfg(not(feature = "cuda"))]
    CudaStatus {
        compiled: false,
        devices: None,
        device: None,
        error: None,
    }
}

/// The GPU behind `device`, or `None` for the CPU; `Some(Err)` when the
/// driver would not say.
pub fn describe(device: &candle_core::Device) -> Option<Result<GpuInfo, String>> {
    match device {
        #[cfg(feature = "cuda")]
        candle_core::Device::Cuda(dev) => {
            let stream = dev.cuda_stream();
            let ctx = stream.context();
            let info = (|| {
                let (major, minor) = ctx.compute_capability()?;
                let (free, total) = ctx.mem_get_info()?;
                Ok(GpuInfo {
                    ordinal: ctx.ordinal(),
                    name: ctx.name()?,
                    compute_capability: format!("{major}.{minor}"),
                    total_mb: total as f64 / MB,
                    free_mb: free as f64 / MB,
                })
            })();
            Some(info.map_err(
                |e: candle_core::cuda_backend::cudarc::driver::DriverError| {
                    one_line(&e.to_string())
                },
            ))
        }
        _ => None,
    }
}

/// candle's error on one line, without the backtrace candle attaches under
/// RUST_BACKTRACE: what a report or a message shows.
pub fn error_text(e: &candle_core::Error) -> String {
    let mut e = e;
    while let candle_core::Error::WithBacktrace { inner, .. } = e {
        e = inner;
    }
    one_line(&e.to_string())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_is_no_gpu() {
        assert!(describe(&candle_core::Device::Cpu).is_none());
    }

    #[test]
    fn error_text_drops_the_backtrace() {
        let e = candle_core::Error::Msg("no device\n  here".into());
        let bt = candle_core::Error::WithBacktrace {
            inner: Box::new(e),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert_eq!(error_text(&bt), "no device here");
    }

    #[test]
    fn status_lines_say_what_is_missing() {
        let mut s = CudaStatus {
            compiled: false,
            devices: None,
            device: None,
            error: None,
        };
        assert_eq!(
            s.to_string(),
            "not compiled in (build with --features cuda)"
        );
        s.compiled = true;
        s.error = Some(
            "DriverError(CUDA_ERROR_NO_DEVICE, \"no CUDA-capable device is detected\")".into(),
        );
        assert_eq!(
            s.to_string(),
            "compiled in, no device found (DriverError(CUDA_ERROR_NO_DEVICE, \"no CUDA-capable device is detected\"))"
        );
        s.devices = Some(2);
        s.device = Some(GpuInfo {
            ordinal: 0,
            name: "NVIDIA H200".into(),
            compute_capability: "9.0".into(),
            total_mb: 143_771.0,
            free_mb: 143_000.4,
        });
        assert_eq!(
            s.to_string(),
            "compiled in, 2 devices; 0: NVIDIA H200 (compute 9.0, 143771 MB, 143000 MB free)"
        );
        assert!((s.device.unwrap().used_mb() - 770.6).abs() < 1e-6);
    }

    /// Compiled in: a device or the reason there is none (without a GPU,
    /// e.g. with the link stub on LD_LIBRARY_PATH, the driver's error).
    #[cfg(feature = "cuda")]
    #[test]
    fn status_has_a_device_or_an_error() {
        let s = status();
        assert!(s.compiled);
        assert_eq!(s.device.is_some(), s.error.is_none(), "{s:?}");
    }
}
