//! Checks on the PTX the CUDA kernels compile to. The step must compute the bits the CPU
//! engine computes, so every double-precision operation must round as IEEE 754 says, one
//! operation at a time: no fused multiply-add (`fma.f64`, `mad.f64`), and `add`, `sub`,
//! `mul`, `div` and `sqrt` on f64 only in their explicit round-to-nearest form (`.rn`).
//! A bare `mul.f64` / `add.f64` leaves ptxas free to fuse the pair into an FMA when it
//! builds the machine code, which NVRTC's `--fmad=false` rules out by writing `.rn`.

/// The instructions of `ptx` that break the rule above, each as "line N: the
/// instruction"; empty when every f64 operation rounds on its own to nearest.
pub fn rounding_violations(ptx: &str) -> Vec<String> {
    ptx.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let op = opcode(line)?;
            (!rounds_alone(op)).then(|| format!("line {}: {}", i + 1, line.trim()))
        })
        .collect()
}

/// The opcode of an instruction line (`mul.rn.f64`), without its guard predicate; `None`
/// for directives, labels, braces, comments and blank lines.
fn opcode(line: &str) -> Option<&str> {
    let mut t = line.trim();
    if t.is_empty()
        || t.starts_with("//")
        || t.starts_with('.')
        || t.starts_with('{')
        || t.starts_with('}')
        || t.ends_with(':')
    {
        return None;
    }
    if t.starts_with('@') {
        // A guard predicate: `@%p1 bra …` or `@!%p1 …`.
        t = t.split_once(char::is_whitespace)?.1.trim_start();
    }
    t.split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .filter(|o| !o.is_empty())
}

/// Whether an opcode rounds each f64 result on its own to nearest (or does not compute
/// one: loads, moves, comparisons, integer work).
fn rounds_alone(op: &str) -> bool {
    let parts: Vec<&str> = op.split('.').collect();
    let f64_result = parts.last() == Some(&"f64");
    match parts[0] {
        "fma" | "mad" => !f64_result,
        "add" | "sub" | "mul" | "div" | "sqrt" => !f64_result || parts[1..] == ["rn", "f64"],
        // Approximations of a reciprocal (square root) give other bits than a division.
        "rcp" | "rsqrt" => !f64_result,
        _ => true,
    }
}

/// The double-precision instructions of one kernel entry, counted in its PTX by kind: what
/// bounds the step on GPUs with few f64 units (consumer cards run f64 at 1/64 of the f32
/// rate). A static count over every path of the entry; one env-step runs a subset.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct F64Census {
    pub entry: String,
    /// `add`, `sub`, `mul` (and any `fma`) on f64.
    pub arith: usize,
    /// `div.rn.f64`: ptxas expands each into a reciprocal approximation, Newton steps
    /// and a slow-path check, several f64 operations.
    pub div: usize,
    /// `sqrt.rn.f64`, expanded likewise.
    pub sqrt: usize,
    /// `setp`, `max`, `min` on f64.
    pub compare: usize,
    /// `cvt` to or from f64.
    pub convert: usize,
    /// Other f64 operations (`abs`, `neg`, `selp`, …), not loads, stores or moves.
    pub other: usize,
    /// Every opcode counted, with its count.
    pub by_opcode: std::collections::BTreeMap<String, usize>,
}

impl F64Census {
    pub fn total(&self) -> usize {
        self.arith + self.div + self.sqrt + self.compare + self.convert + self.other
    }
}

/// Counts the f64 instructions of `entry` in `ptx`; `None` when the entry is not there.
pub fn f64_census(ptx: &str, entry: &str) -> Option<F64Census> {
    let start = ptx.find(&format!(".entry {entry}("))?;
    let body = &ptx[start..];
    let end = body.find("\n}").map_or(body.len(), |e| e + 2);
    let mut c = F64Census {
        entry: entry.to_string(),
        ..Default::default()
    };
    for line in body[..end].lines() {
        let Some(op) = opcode(line) else { continue };
        let parts: Vec<&str> = op.split('.').collect();
        if !parts.contains(&"f64") {
            continue;
        }
        let kind = match parts[0] {
            "ld" | "ldu" | "st" | "mov" => continue,
            "add" | "sub" | "mul" | "fma" | "mad" => &mut c.arith,
            "div" => &mut c.div,
            "sqrt" => &mut c.sqrt,
            "setp" | "max" | "min" => &mut c.compare,
            "cvt" => &mut c.convert,
            _ => &mut c.other,
        };
        *kind += 1;
        *c.by_opcode.entry(op.to_string()).or_default() += 1;
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contracted_or_unrounded_f64_arithmetic_is_flagged() {
        let ptx = "\
.visible .entry step(
\t.param .u64 step_param_0
)
{
\t.reg .f64 %fd<4>;
$L__BB0_1:
\tmul.rn.f64 %fd3, %fd1, %fd2;
\tadd.rn.f64 %fd3, %fd3, %fd1;
\tdiv.rn.f64 %fd3, %fd3, %fd1;
\tsqrt.rn.f64 %fd3, %fd3;
\tsetp.lt.f64 %p1, %fd3, %fd1;
\tmax.f64 %fd3, %fd3, %fd1;
\tcvt.rzi.s64.f64 %rd1, %fd3;
\tadd.s32 %r1, %r1, 1;
\tmul.wide.u32 %rd2, %r1, 8;
\tfma.rn.f32 %f1, %f2, %f3, %f4;
\t@%p1 bra $L__BB0_1;
\tmul.f64 %fd1, %fd2, %fd3;
\tfma.rn.f64 %fd1, %fd2, %fd3, %fd1;
\t@!%p1 sub.rz.f64 %fd1, %fd1, %fd2;
\tdiv.full.f64 %fd1, %fd1, %fd2;
\trcp.approx.ftz.f64 %fd1, %fd2;
\tmad.lo.s32 %r2, %r1, 3, %r1;
\tret;
}
";
        let bad = rounding_violations(ptx);
        assert_eq!(
            bad,
            [
                "line 18: mul.f64 %fd1, %fd2, %fd3;",
                "line 19: fma.rn.f64 %fd1, %fd2, %fd3, %fd1;",
                "line 20: @!%p1 sub.rz.f64 %fd1, %fd1, %fd2;",
                "line 21: div.full.f64 %fd1, %fd1, %fd2;",
                "line 22: rcp.approx.ftz.f64 %fd1, %fd2;",
            ]
        );
    }

    #[test]
    fn census_counts_f64_work_of_one_entry() {
        let ptx = "
.visible .entry observe(
)
{
\tadd.rn.f64 %fd1, %fd2, %fd3;
}
.visible .entry step(
\t.param .u64 step_param_0
)
{
\tld.global.f64 %fd1, [%rd1];
\tmul.rn.f64 %fd2, %fd1, %fd1;
\t@%p1 div.rn.f64 %fd3, %fd2, %fd1;
\tsqrt.rn.f64 %fd4, %fd3;
\tsetp.gt.f64 %p2, %fd4, 0d0000000000000000;
\tcvt.rn.f32.f64 %f1, %fd4;
\tcvt.rn.f64.s64 %fd5, %rd2;
\tabs.f64 %fd6, %fd5;
\tadd.s32 %r1, %r2, 1;
\tst.global.f64 [%rd1], %fd6;
}
";
        let c = f64_census(ptx, "step").unwrap();
        assert_eq!(
            (c.arith, c.div, c.sqrt, c.compare, c.convert, c.other),
            (1, 1, 1, 1, 2, 1)
        );
        assert_eq!(c.total(), 7);
        assert_eq!(c.by_opcode["cvt.rn.f64.s64"], 1);
        assert!(f64_census(ptx, "reset_all").is_none());
        assert_eq!(f64_census(ptx, "observe").unwrap().arith, 1);
    }
}
