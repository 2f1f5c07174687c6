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
}
