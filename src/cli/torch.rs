//! The commands that run libtorch, run in process: what `sim-train-torch` does (see
//! [`super::TorchCommands`]).

use super::{BenchSweepArgs, BenchTrainArgs, DoctorArgs, GlobalArgs, PipelineArgs, TorchCommands};
use super::{other, train_cmd, walkforward_cmd};
use crate::config::Resolved;
use crate::error::Result;

/// Every command of [`TorchCommands`], in this process.
pub struct InProcess;

impl TorchCommands for InProcess {
    fn pipeline(&self, a: &PipelineArgs, r: &Resolved, progress: bool) -> Result<i32> {
        other::pipeline(a, r, progress)
    }
    fn train(&self, a: &train_cmd::TrainArgs, g: &GlobalArgs, progress: bool) -> Result<i32> {
        train_cmd::run(a, g, progress)
    }
    fn eval_checkpoint(&self, a: &train_cmd::EvalArgs) -> Result<i32> {
        train_cmd::eval_checkpoint(a)
    }
    fn export(&self, a: &train_cmd::ExportArgs) -> Result<i32> {
        train_cmd::export(a)
    }
    fn walk_forward(
        &self,
        a: &walkforward_cmd::WalkForwardArgs,
        g: &GlobalArgs,
        r: &Resolved,
        progress: bool,
    ) -> Result<i32> {
        walkforward_cmd::run(a, g, r, progress)
    }
    fn bench_train(&self, a: &BenchTrainArgs, r: &Resolved) -> Result<i32> {
        other::bench_train(a, r)
    }
    fn bench_sweep(&self, a: &BenchSweepArgs, r: &Resolved) -> Result<i32> {
        other::bench_sweep(a, r)
    }
    fn doctor(&self, a: &DoctorArgs, r: &Resolved) -> Result<i32> {
        other::doctor(a, r)
    }
}
