//! Runtime profiles: how long one model call takes on an accelerator, and how instances of the
//! same runtime slow each other down. Written into the stub runtime's model file (the "DLC"),
//! which times every call with them (see `platform/snpe-sys/stub/snpe_stub.c`).

use std::path::Path;

use super::accel::Runtime;

/// A runtime profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Name as given on the command line.
    pub name: String,
    /// The SNPE runtime it runs on.
    pub runtime: Runtime,
    /// Milliseconds of work per call when the instance runs alone.
    pub base_ms: f64,
    /// Uniform jitter (±) around `base_ms`.
    pub jitter_ms: f64,
    /// Slow-down per extra concurrent instance: with `k` instances executing at once each
    /// progresses at `1 / (1 + contention × (k − 1))`.
    pub contention: f64,
    /// Most instances this runtime supports (`slow`: one).
    pub max_instances: Option<u32>,
}

/// One named profile: a row of [`PROFILES`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProfileDef {
    /// Name on the command line.
    pub name: &'static str,
    /// What it reproduces (the `--help` line).
    pub about: &'static str,
    /// The SNPE runtime it runs on.
    pub runtime: Runtime,
    /// Milliseconds per call alone.
    pub base_ms: f64,
    /// Uniform jitter (±), ms.
    pub jitter_ms: f64,
    /// Slow-down per extra concurrent instance.
    pub contention: f64,
    /// Most instances the runtime supports.
    pub max_instances: Option<u32>,
}

/// The named profiles: parsing, `--help` and the tests all read this table, so a new profile is
/// one row.
pub const PROFILES: [ProfileDef; 5] = [
    // dsp: 88 × (1 + c × 5) = 240  ⇒  c = (240 / 88 − 1) / 5 ≈ 0.345.
    ProfileDef {
        name: "dsp",
        about: "Hexagon DSP: 88 ms alone, ~240 ms each when 6 run at once (they contend)",
        runtime: Runtime::Dsp,
        base_ms: 88.0,
        jitter_ms: 4.0,
        contention: (240.0 / 88.0 - 1.0) / 5.0,
        max_instances: None,
    },
    ProfileDef {
        name: "aip",
        about: "AIP: 95 ms alone, 80-120 ms each with 6 at once (they do not contend)",
        runtime: Runtime::Aip,
        base_ms: 95.0,
        jitter_ms: 15.0,
        contention: 0.0,
        max_instances: None,
    },
    ProfileDef {
        name: "gpu",
        about: "Adreno GPU: 45 ms alone, shared moderately between instances",
        runtime: Runtime::Gpu,
        base_ms: 45.0,
        jitter_ms: 5.0,
        contention: 0.6,
        max_instances: None,
    },
    ProfileDef {
        name: "cpu",
        about: "the board's CPU: 400 ms alone, instances share the cores",
        runtime: Runtime::Cpu,
        base_ms: 400.0,
        jitter_ms: 20.0,
        contention: 1.0,
        max_instances: None,
    },
    ProfileDef {
        name: "slow",
        about: "the first board setup: 220 ms per call, one instance only",
        runtime: Runtime::Dsp,
        base_ms: 220.0,
        jitter_ms: 5.0,
        contention: 0.0,
        max_instances: Some(1),
    },
];

/// The form of a profile of your own.
pub const CUSTOM: &str = "custom:BASE_MS,JITTER_MS,CONTENTION";

impl Profile {
    /// Parses a profile name: one of [`PROFILES`], or `custom:BASE_MS,JITTER_MS,CONTENTION`.
    ///
    /// # Errors
    /// A message listing the accepted forms.
    pub fn parse(s: &str) -> Result<Profile, String> {
        if let Some(d) = PROFILES.iter().find(|d| d.name == s) {
            return Ok(Profile {
                name: s.to_string(),
                runtime: d.runtime,
                base_ms: d.base_ms,
                jitter_ms: d.jitter_ms,
                contention: d.contention,
                max_instances: d.max_instances,
            });
        }
        let custom = s.strip_prefix("custom:").ok_or_else(|| Self::usage(s))?;
        let v: Vec<f64> =
            custom.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| Self::usage(s))?;
        match v[..] {
            [b, j, c]
                if b.is_finite()
                    && c.is_finite()
                    && b > 0.0
                    && b <= 3_600_000.0
                    && (0.0..=b).contains(&j)
                    && (0.0..=1000.0).contains(&c) =>
            {
                Ok(Profile {
                    name: s.to_string(),
                    runtime: Runtime::Cpu,
                    base_ms: b,
                    jitter_ms: j,
                    contention: c,
                    max_instances: None,
                })
            }
            _ => Err(Self::usage(s)),
        }
    }

    /// The list of profiles for `--help`, one per line, built from [`PROFILES`].
    pub fn help() -> String {
        let mut s = String::new();
        for d in &PROFILES {
            s += &format!("  {:<6} {}\n", d.name, d.about);
        }
        s + &format!("  {CUSTOM}  your own (e.g. custom:50,5,0.2)\n")
    }

    /// The names, comma-separated, then the custom form (for one-line help and errors).
    pub fn names() -> String {
        let names: Vec<&str> = PROFILES.iter().map(|d| d.name).collect();
        format!("{}, or {CUSTOM}", names.join(", "))
    }

    /// Serializes a profile as its name (for a role's `to_argv`).
    ///
    /// # Errors
    /// Never, beyond the serializer's own.
    pub fn ser_name<S: serde::Serializer>(p: &Profile, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.name)
    }

    fn usage(s: &str) -> String {
        let names: Vec<&str> = PROFILES.iter().map(|d| d.name).collect();
        format!(
            "unknown profile '{s}': use one of {} or {CUSTOM} (e.g. custom:50,5,0.2; jitter ≤ base)",
            names.join(", ")
        )
    }

    /// Time of one call with `k` instances busy at once (jitter aside).
    pub fn call_ms(&self, k: u32) -> f64 {
        self.base_ms * (1.0 + self.contention * f64::from(k.max(1) - 1))
    }

    /// Writes the stub runtime's model file for `height`×`width`×`channels` input, timed by this
    /// profile scaled by `time_scale`; instances count each other through `shared` (a file of
    /// at least 64 zero bytes, created here if missing).
    ///
    /// # Errors
    /// I/O errors writing either file.
    pub fn write_dlc(
        &self,
        path: &Path,
        height: u32,
        width: u32,
        channels: u32,
        time_scale: f64,
        shared: &Path,
    ) -> std::io::Result<()> {
        // Fresh counters (zero executing instances): a leftover file must not carry old counts.
        std::fs::write(shared, [0u8; 64])?;
        std::fs::write(
            path,
            format!(
                "framebus-stub-dlc 1\n# profile {} ({:?})\ninput data {height} {width} {channels}\noutput result 80\ntime {} {} {}\nshared {}\n",
                self.name,
                self.runtime,
                self.base_ms * time_scale,
                self.jitter_ms * time_scale,
                self.contention,
                shared.display()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_profiles_reproduce_the_board_figures() {
        let dsp = Profile::parse("dsp").unwrap();
        assert_eq!(dsp.call_ms(1), 88.0);
        assert!((dsp.call_ms(6) - 240.0).abs() < 1e-9, "6 DSP instances contend to ~240 ms");
        let aip = Profile::parse("aip").unwrap();
        let six = aip.call_ms(6);
        assert!((80.0..=120.0).contains(&(six - aip.jitter_ms)) && (80.0..=120.0).contains(&(six + aip.jitter_ms)));
        assert_eq!(Profile::parse("slow").unwrap().max_instances, Some(1));
        for d in PROFILES {
            assert!(Profile::parse(d.name).is_ok_and(|p| p.runtime == d.runtime), "{}", d.name);
            assert!(Profile::help().contains(d.about), "--help lists {}", d.name);
        }
    }

    #[test]
    fn custom_profiles_parse_and_bad_ones_say_what_is_accepted() {
        let c = Profile::parse("custom:50,5,0.2").unwrap();
        assert_eq!((c.base_ms, c.jitter_ms, c.contention), (50.0, 5.0, 0.2));
        for bad in [
            "fast",
            "custom:",
            "custom:1,2",
            "custom:10,20,0",
            "custom:-1,0,0",
            "custom:a,b,c",
            "custom:inf,0,0",
            "custom:1,0,inf",
            "custom:NaN,0,0",
        ] {
            let e = Profile::parse(bad).unwrap_err();
            assert!(e.contains("custom:BASE_MS,JITTER_MS,CONTENTION"), "{bad}: {e}");
        }
    }
}
