//! Which kernels run on this CPU: the instruction-set tier, detected once
//! or forced with `TARJAMA_CPU_ISA`, and the kernel each precision gets on
//! it. A forced tier the CPU lacks is an error, never a silent fallback.

use std::fmt;
use std::sync::OnceLock;

use super::Precision;

/// The environment variable that forces a tier.
pub const ISA_VAR: &str = "TARJAMA_CPU_ISA";

/// An instruction-set tier of the native kernels, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// AVX-512 F/BW/DQ/VL + FMA (Skylake-X, Ice Lake, Sapphire Rapids, Zen 4+).
    Avx512,
    /// AVX2 + FMA + AVX-VNNI (Alder Lake and later client CPUs, Zen 5).
    Avx2Vnni,
    /// AVX2 + FMA (Haswell and later, Zen 1–3).
    Avx2,
    /// Plain code for the target's baseline (any CPU).
    Portable,
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2Vnni, Isa::Avx2, Isa::Portable];

    /// The name `TARJAMA_CPU_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2Vnni => "avx2-vnni",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    fn parse(s: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether this CPU can run the tier.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2 => has("avx2") && has("fma"),
            Isa::Avx2Vnni => Isa::Avx2.supported() && has("avxvnni"),
            Isa::Avx512 => {
                Isa::Avx2.supported()
                    && has("avx512f")
                    && has("avx512bw")
                    && has("avx512dq")
                    && has("avx512vl")
            }
        }
    }

    /// The best tier this CPU runs.
    pub fn detected() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|i| i.supported())
            .unwrap_or(Isa::Portable)
    }

    /// The kernel a precision runs on this tier. Within a tier, a
    /// precision whose own extension is missing (AVX512-BF16, AVX512-VNNI)
    /// takes the next tier's kernel for it.
    pub fn kernel(self, p: Precision) -> Kernel {
        match (self, p) {
            (Isa::Portable, _) => Kernel::Portable,
            (Isa::Avx512, Precision::F32) => Kernel::Avx512F32,
            (_, Precision::F32) => Kernel::Avx2F32,
            (Isa::Avx512, Precision::Bf16) if has("avx512bf16") => Kernel::Avx512Bf16,
            (_, Precision::Bf16) => Kernel::Avx2Bf16,
            (Isa::Avx512, Precision::Int8) if has("avx512vnni") => Kernel::Avx512Vnni,
            (Isa::Avx512 | Isa::Avx2Vnni, Precision::Int8) if has("avxvnni") => Kernel::AvxVnni,
            (_, Precision::Int8) => Kernel::Avx2Int8,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One micro-kernel: a precision's arithmetic on one instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    Avx512F32,
    /// `vdpbf16ps`.
    Avx512Bf16,
    /// `vpdpbusd` on zmm.
    Avx512Vnni,
    Avx2F32,
    /// bf16 widened to f32 in registers, f32 FMAs: no bf16 arithmetic on
    /// this CPU, but half the weight bytes of f32.
    Avx2Bf16,
    /// `vpdpbusd` on ymm (VEX-encoded AVX-VNNI).
    AvxVnni,
    /// `vpmaddubsw` + `vpmaddwd` on |a| and sign-adjusted weights: exact
    /// i32 sums (no i16 saturation: |a·b| pairs stay below 2·127²).
    Avx2Int8,
    Portable,
}

impl Kernel {
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512F32 => "avx512",
            Kernel::Avx512Bf16 => "avx512-bf16",
            Kernel::Avx512Vnni => "avx512-vnni",
            Kernel::Avx2F32 => "avx2",
            Kernel::Avx2Bf16 => "avx2 (bf16 widened to f32)",
            Kernel::AvxVnni => "avx-vnni",
            Kernel::Avx2Int8 => "avx2",
            Kernel::Portable => "portable",
        }
    }

    /// Every kernel of `p` this CPU can run (for tests and benches).
    pub fn available(p: Precision) -> Vec<Kernel> {
        let mut v: Vec<Kernel> = Vec::new();
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let k = isa.kernel(p);
            if !v.contains(&k) {
                v.push(k);
            }
        }
        v
    }
}

/// `TARJAMA_CPU_ISA` named something this CPU or this build cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsaError {
    #[error("{ISA_VAR}={0:?} is not a tier; use one of avx512, avx2-vnni, avx2, portable")]
    Unknown(String),
    #[error(
        "{ISA_VAR}={0} but this CPU lacks it (it has: {1}); unset {ISA_VAR} to use the best it runs"
    )]
    Unsupported(&'static str, String),
}

/// The tier every kernel uses, read once: `TARJAMA_CPU_ISA` when set, else
/// the best the CPU runs.
pub fn selected() -> Result<Isa, IsaError> {
    static SELECTED: OnceLock<Result<Isa, IsaError>> = OnceLock::new();
    SELECTED
        .get_or_init(|| match std::env::var(ISA_VAR) {
            Ok(v) if !v.trim().is_empty() => {
                let isa = Isa::parse(&v).ok_or(IsaError::Unknown(v))?;
                if isa.supported() {
                    Ok(isa)
                } else {
                    Err(IsaError::Unsupported(
                        isa.name(),
                        found_features().join(" "),
                    ))
                }
            }
            _ => Ok(Isa::detected()),
        })
        .clone()
}

/// The tier for kernels called before a model checked [`selected`]: the
/// forced one, or (when the variable is invalid) the portable code, which
/// runs everywhere. Model loading reports the error first.
pub(crate) fn current() -> Isa {
    // Called per attention head and per matrix product: one load, no clone.
    static CURRENT: OnceLock<Isa> = OnceLock::new();
    *CURRENT.get_or_init(|| selected().unwrap_or(Isa::Portable))
}

/// The CPU features the kernels look for.
pub const FEATURES: [&str; 9] = [
    "avx2",
    "fma",
    "avxvnni",
    "avx512f",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512bf16",
    "avx512vnni",
];

/// Those of [`FEATURES`] this CPU has.
pub fn found_features() -> Vec<&'static str> {
    FEATURES.into_iter().filter(|f| has(f)).collect()
}

fn has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match feature {
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            "avxvnni" => std::arch::is_x86_feature_detected!("avxvnni"),
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
            "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
            "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
            "avx512bf16" => std::arch::is_x86_feature_detected!("avx512bf16"),
            "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse_by_name_and_nest() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse(" AVX2 "), Some(Isa::Avx2));
        assert_eq!(Isa::parse("sse4"), None);
        // A tier the CPU runs implies every lower tier but AVX-VNNI (an
        // AVX-512 CPU without AVX-VNNI exists: Ice Lake).
        for (i, isa) in Isa::ALL.into_iter().enumerate() {
            if isa.supported() {
                for lower in &Isa::ALL[i + 1..] {
                    assert!(
                        lower.supported() || *lower == Isa::Avx2Vnni,
                        "{isa} without {lower}"
                    );
                }
            }
        }
        assert!(Isa::detected().supported());
        assert_eq!(Isa::Portable.kernel(Precision::Int8), Kernel::Portable);
        assert_eq!(Isa::Avx2.kernel(Precision::Int8), Kernel::Avx2Int8);
        assert_eq!(Isa::Avx2Vnni.kernel(Precision::F32), Kernel::Avx2F32);
    }
}
