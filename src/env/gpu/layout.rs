//! The one definition of what the GPU kernels read and write, from which the CUDA and WGSL
//! declarations are generated, so Rust, CUDA and WGSL cannot drift apart.
//!
//! - **Environment state**: the fields of [`EnvState`] (the CPU engine's struct of arrays,
//!   [`EnvState::FIELDS`]) plus two device-only fields ([`DEVICE_FIELDS`]), grouped by
//!   element type into three buffers (`u32`, `i64`, `f64`), field-major: field `j` of
//!   environment `i` is word `j · n + i` of its type's buffer, so a warp (or subgroup)
//!   reading one field reads consecutive words. `u8` fields widen to `u32` (WGSL has no
//!   byte arrays). The rolling-Sharpe windows follow the `f64` fields (`n × ring_w`).
//! - **Records**: [`Params`], [`SlotInfo`] and [`LogRec`] are declared here with
//!   [`gpu_struct!`]; [`BarRec`] is checked against [`BAR_FIELDS`] by offset.
//!
//! [`cuda_prelude`] and [`wgsl_prelude`] render these as source text that the backends
//! put in front of `kernels/env_step.cu` and `shaders/env_step.wgsl` before compiling;
//! the kernels name fields only through the generated constants and structs. The prelude
//! carries [`LAYOUT_VERSION`], and a kernel source written for another version is refused
//! ([`check_source_version`]).

use crate::env::cpu::EnvState;
use crate::env::day::BarRec;
use std::fmt::Write;

/// Bumped whenever a record or the state grouping changes meaning; kernel sources declare
/// the version they were written for (`// layout-version: N`).
pub const LAYOUT_VERSION: u32 = 2;

/// Element type classes of the state buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    U32,
    I64,
    F64,
}

impl Class {
    fn of(rust_type: &str) -> Class {
        match rust_type {
            "u32" | "u8" => Class::U32,
            "i64" => Class::I64,
            "f64" => Class::F64,
            other => panic!("state field type {other} has no GPU class: add it to layout.rs"),
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Class::U32 => "U",
            Class::I64 => "I",
            Class::F64 => "F",
        }
    }
}

/// State fields the GPU backends keep besides [`EnvState`]'s: the slot holding the
/// environment's day, and how many episodes it has taken from its queue.
pub const DEVICE_FIELDS: &[(&str, &str)] = &[("day_slot", "u32"), ("ep_head", "u32")];

/// One state field's place: its class and its index within the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: &'static str,
    pub class: Class,
    pub index: usize,
}

/// Every state field's place, [`EnvState`]'s first, in declaration order.
pub fn state_slots() -> Vec<Slot> {
    let mut counts = [0usize; 3];
    EnvState::FIELDS
        .iter()
        .chain(DEVICE_FIELDS)
        .map(|&(name, ty)| {
            let class = Class::of(ty);
            let c = &mut counts[class as usize];
            *c += 1;
            Slot {
                name,
                class,
                index: *c - 1,
            }
        })
        .collect()
}

/// Fields per class: `(u32, i64, f64)`.
pub fn class_counts() -> (usize, usize, usize) {
    let s = state_slots();
    let count = |c| s.iter().filter(|f| f.class == c).count();
    (count(Class::U32), count(Class::I64), count(Class::F64))
}

/// The index of field `name` in its class's buffer.
pub fn field(name: &str) -> Slot {
    *state_slots()
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no state field {name}"))
}

/// Declares a `#[repr(C)]` record shared with the kernels and its field table. Fields
/// must be listed so that no padding is needed (the `f64`s first): a test checks it.
macro_rules! gpu_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }

        impl $name {
            /// Field names and element types, in declaration order.
            pub const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($f), stringify!($t)),)*];
        }
    };
}

gpu_struct! {
    /// The environment plan ([`crate::env::EnvParams`]) as the kernels read it, with every
    /// derived constant computed here so all backends use the same bits.
    Params {
        initial_equity: f64,
        inv_initial_equity: f64,
        max_position_usd: f64,
        inv_max_position_usd: f64,
        min_order_frac: f64,
        loss_limit: f64,
        participation: f64,
        /// Dollars per share, or a fraction of notional (see `commission_per_share`).
        commission: f64,
        commission_min: f64,
        half_spread_frac: f64,
        impact_k: f64,
        borrow_per_ms: f64,
        reward_scale: f64,
        w_pnl: f64,
        w_dsr: f64,
        w_sharpe: f64,
        w_drawdown: f64,
        w_turnover: f64,
        dsr_eta: f64,
        dsr_eps: f64,
        inv_session_ms: f64,
        n_envs: u32,
        /// Feature columns per row.
        k: u32,
        obs_dim: u32,
        n_actions: u32,
        latency_ms: u32,
        max_episode_steps: u32,
        carry_remainder: u32,
        /// 1: `commission` is dollars per share; 0: a fraction of notional.
        commission_per_share: u32,
        dsr_warmup: u32,
        /// Rolling-Sharpe window (0 when the term is off).
        ring_w: u32,
        /// Episodes queued per environment.
        queue_len: u32,
        /// Rows per day slot.
        slot_rows: u32,
        /// Halts per day slot.
        max_halts: u32,
        /// Finished-episode records the log holds.
        log_cap: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

gpu_struct! {
    /// A day slot's session (its bars and feature rows live at `slot · slot_rows`).
    SlotInfo {
        first_row: u32,
        last_row: u32,
        close_ms: u32,
        bar_ms: u32,
        n_halts: u32,
        rows: u32,
        /// The host's serial number of this upload (a day's identity in the episode log,
        /// which outlives the slot's reuse).
        day: u32,
    }
}

gpu_struct! {
    /// One finished episode, appended by the step kernel at its auto-reset.
    LogRec {
        reward: f64,
        pnl: f64,
        realized: f64,
        costs: f64,
        turnover: f64,
        /// The host's step counter when it finished (orders the log like the CPU's).
        tick: u32,
        env: u32,
        /// [`SlotInfo::day`] of the episode's day slot.
        day: u32,
        start_row: u32,
        steps: u32,
        /// 1 + [`crate::env::EndReason`] index (as `EnvState::ended`).
        reason: u32,
        fills: u32,
        rejected: u32,
    }
}

/// [`BarRec`]'s fields as the kernels declare them (checked by offset in the tests).
pub const BAR_FIELDS: &[(&str, &str)] = &[
    ("ts_ms", "u32"),
    ("flags", "u32"),
    ("open", "f64"),
    ("close", "f64"),
    ("bid", "f64"),
    ("ask", "f64"),
    ("volume", "f32"),
    ("sigma", "f32"),
];

/// Words of the control buffer: the log's record count (atomic; record `c` is at
/// `c mod log_cap`, a power of two, so the count may wrap).
pub const CTL_LOG_COUNT: usize = 0;
pub const CTL_WORDS: usize = 4;

const _: () = assert!(std::mem::size_of::<BarRec>() == 48);

fn size_of_type(t: &str) -> usize {
    match t {
        "u32" | "f32" => 4,
        "f64" | "i64" => 8,
        other => panic!("no GPU size for {other}"),
    }
}

/// C-layout offsets of a field table (each field aligned to its size), and the size.
pub fn c_offsets(fields: &[(&str, &str)]) -> (Vec<usize>, usize) {
    let mut at = 0usize;
    let mut align = 1usize;
    let offs = fields
        .iter()
        .map(|&(_, t)| {
            let s = size_of_type(t);
            align = align.max(s);
            at = at.next_multiple_of(s);
            let o = at;
            at += s;
            o
        })
        .collect();
    (offs, at.next_multiple_of(align))
}

fn cuda_type(t: &str) -> &'static str {
    match t {
        "u32" => "unsigned int",
        "f32" => "float",
        "f64" => "double",
        "i64" => "long long",
        other => panic!("no CUDA type for {other}"),
    }
}

fn wgsl_type(t: &str) -> &'static str {
    match t {
        "u32" => "u32",
        "f32" => "f32",
        "f64" => "f64",
        "i64" => "i64",
        other => panic!("no WGSL type for {other}"),
    }
}

/// The records the kernels declare: `(name, fields)`.
fn records() -> [(&'static str, &'static [(&'static str, &'static str)]); 4] {
    [
        ("Params", Params::FIELDS),
        ("SlotInfo", SlotInfo::FIELDS),
        ("LogRec", LogRec::FIELDS),
        ("Bar", BAR_FIELDS),
    ]
}

/// Constants both languages get: `(name, value)`.
fn constants() -> Vec<(String, u32)> {
    let (nu, ni, nf) = class_counts();
    let mut c = vec![
        ("LAYOUT_VERSION".to_string(), LAYOUT_VERSION),
        ("N_U32".into(), nu as u32),
        ("N_I64".into(), ni as u32),
        ("N_F64".into(), nf as u32),
        ("CTL_LOG_COUNT".into(), CTL_LOG_COUNT as u32),
        ("FLAG_HALTED".into(), crate::env::day::FLAG_HALTED),
        ("FLAG_QUOTE".into(), crate::env::day::FLAG_QUOTE),
        ("N_ACCOUNT".into(), crate::env::ACCOUNT_FIELDS.len() as u32),
    ];
    for s in state_slots() {
        c.push((
            format!("{}_{}", s.class.prefix(), s.name.to_uppercase()),
            s.index as u32,
        ));
    }
    c
}

/// CUDA declarations: `#define`s, structs and a size check of each struct. The cuda
/// backend puts this in front of `kernels/env_step.cu` at run time; the host build
/// (`cuda-host`) includes the committed copy [`HOST_HEADER`], which a test keeps equal.
pub fn cuda_prelude() -> String {
    let mut out = String::from(
        "// Generated by src/env/gpu/layout.rs (cuda_prelude): do not edit. Regenerate with\n\
         // SIM_TRAIN_BLESS=1 cargo test --lib committed_header_is_current\n",
    );
    for (name, v) in constants() {
        writeln!(out, "#define {name} {v}u").unwrap();
    }
    for (name, fields) in records() {
        writeln!(out, "struct {name} {{").unwrap();
        for (f, t) in fields {
            writeln!(out, "    {} {f};", cuda_type(t)).unwrap();
        }
        writeln!(out, "}};").unwrap();
        let (_, size) = c_offsets(fields);
        writeln!(
            out,
            "static_assert(sizeof({name}) == {size}, \"{name}: the Rust record is {size} bytes\");"
        )
        .unwrap();
    }
    out
}

/// Where the host build of the kernels finds [`cuda_prelude`]'s text, relative to the
/// crate root (build.rs compiles `kernels/host_entry.cpp`, which includes it).
pub const HOST_HEADER: &str = "kernels/layout.h";

/// WGSL declarations: `const`s and structs.
pub fn wgsl_prelude() -> String {
    let mut out = String::from("// Generated by src/env/gpu/layout.rs: do not edit.\n");
    for (name, v) in constants() {
        writeln!(out, "const {name}: u32 = {v}u;").unwrap();
    }
    for (name, fields) in records() {
        writeln!(out, "struct {name} {{").unwrap();
        for (f, t) in fields {
            writeln!(out, "    {f}: {},", wgsl_type(t)).unwrap();
        }
        writeln!(out, "}}").unwrap();
    }
    out
}

/// Refuses a kernel source that does not declare `// layout-version: LAYOUT_VERSION`.
pub fn check_source_version(name: &str, source: &str) -> crate::Result<()> {
    let tag = "layout-version:";
    let found = source
        .lines()
        .find_map(|l| l.split_once(tag).map(|(_, v)| v.trim().to_string()));
    match found {
        Some(v) if v == LAYOUT_VERSION.to_string() => Ok(()),
        Some(v) => Err(crate::Error::Device(format!(
            "{name} was written for layout version {v}, this build's layout is version {LAYOUT_VERSION}: rebuild sim-train from one checkout (kernels and Rust together)"
        ))),
        None => Err(crate::Error::Device(format!(
            "{name} declares no '// {tag} N' line: it is not a sim-train kernel"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets_of<T>(fields: &[(&str, &str)]) -> (Vec<usize>, usize) {
        let (offs, size) = c_offsets(fields);
        assert_eq!(size, std::mem::size_of::<T>(), "size");
        (offs, size)
    }

    #[test]
    fn records_have_no_padding_and_match_rust() {
        for (name, fields) in records() {
            let (offs, size) = c_offsets(fields);
            let packed: usize = fields.iter().map(|(_, t)| size_of_type(t)).sum();
            assert_eq!(size, packed, "{name} needs padding: reorder its fields");
            assert!(offs.windows(2).all(|w| w[0] < w[1]));
        }
        offsets_of::<Params>(Params::FIELDS);
        offsets_of::<SlotInfo>(SlotInfo::FIELDS);
        offsets_of::<LogRec>(LogRec::FIELDS);
        let (offs, _) = offsets_of::<BarRec>(BAR_FIELDS);
        let rust = [
            std::mem::offset_of!(BarRec, ts_ms),
            std::mem::offset_of!(BarRec, flags),
            std::mem::offset_of!(BarRec, open),
            std::mem::offset_of!(BarRec, close),
            std::mem::offset_of!(BarRec, bid),
            std::mem::offset_of!(BarRec, ask),
            std::mem::offset_of!(BarRec, volume),
            std::mem::offset_of!(BarRec, sigma),
        ];
        assert_eq!(offs, rust);
    }

    #[test]
    fn every_state_field_has_a_place() {
        let s = state_slots();
        assert_eq!(s.len(), EnvState::FIELDS.len() + DEVICE_FIELDS.len());
        let (nu, ni, nf) = class_counts();
        assert_eq!(nu + ni + nf, s.len());
        // Indices are dense within each class.
        for c in [Class::U32, Class::I64, Class::F64] {
            let idx: Vec<usize> = s.iter().filter(|f| f.class == c).map(|f| f.index).collect();
            assert_eq!(idx, (0..idx.len()).collect::<Vec<_>>());
        }
        assert_eq!(field("position").class, Class::I64);
        assert_eq!(field("ended").class, Class::U32);
    }

    #[test]
    fn preludes_declare_every_field() {
        let (c, w) = (cuda_prelude(), wgsl_prelude());
        for s in state_slots() {
            let name = format!("{}_{}", s.class.prefix(), s.name.to_uppercase());
            assert!(c.contains(&format!("#define {name} {}u", s.index)));
            assert!(w.contains(&format!("const {name}: u32 = {}u;", s.index)));
        }
        for (f, _) in Params::FIELDS {
            assert!(c.contains(&format!(" {f};")) && w.contains(&format!("{f}: ")));
        }
    }

    /// The host build compiles the committed header, the cuda backend the generated text:
    /// they must be the same.
    #[test]
    fn committed_header_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(HOST_HEADER);
        let want = cuda_prelude();
        if std::env::var_os("SIM_TRAIN_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{HOST_HEADER} is not what layout.rs generates; regenerate it with \
             `SIM_TRAIN_BLESS=1 cargo test --lib committed_header_is_current`"
        );
    }

    #[test]
    fn sources_declare_this_layout() {
        let this = format!("// layout-version: {LAYOUT_VERSION}\n");
        assert!(check_source_version("k", &this).is_ok());
        let older = format!("// layout-version: {}\n", LAYOUT_VERSION - 1);
        let e = check_source_version("k", &older).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("layout version {}", LAYOUT_VERSION - 1)),
            "{e}"
        );
        assert!(check_source_version("k", "kernel").is_err());
    }
}
