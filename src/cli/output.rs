//! How a command prints its result as JSON (`--json`): one pretty document on stdout with
//! a trailing newline. Commands print their text form themselves; logs and errors go to
//! stderr, never here.

use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write as _;

/// Prints `value` as pretty JSON on stdout; returns the exit code 0. A value that cannot
/// be serialized (a map with non-string keys, say) is an error, never an empty line.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<i32> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Data(format!("cannot print the result as JSON: {e}")))?;
    text.push('\n');
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) ends the process quietly through the default SIGPIPE
    // disposition (see `super::init_process`); any other failure is an error.
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_cannot_be_json_is_an_error_not_an_empty_line() {
        let mut m = std::collections::HashMap::new();
        m.insert((1, 2), 3);
        let e = json(&m).unwrap_err();
        assert!(
            e.to_string().contains("cannot print the result as JSON"),
            "{e}"
        );
        assert_eq!(json(&[1, 2]).unwrap(), 0);
    }
}
