//! The wgpu backend: `shaders/env_step.wgsl` behind the generated prelude, on any adapter
//! with 64-bit float and integer shader support (Vulkan, Metal, DX12; lavapipe on CPUs).
//!
//! Pipelines, the bind group layout and the bind group are built once in
//! [`Device::alloc`]; a launch is one compute pass with the step counter as its immediate
//! data, a read is a copy into a mappable staging buffer and a blocking map, a readback
//! the same copy mapped asynchronously (polled, never waited for while it has not been
//! asked for). All work goes through the one queue, in order.

use super::layout::{self, Params};
use super::{BLOCK, Buf, Capacity, Device, Entry, N_BUFS};
use crate::error::{Error, Result};

const SOURCE: &str = include_str!("../../../shaders/env_step.wgsl");
const SOURCE_NAME: &str = "shaders/env_step.wgsl";

/// The full shader text: the generated declarations, then the kernel source.
pub fn shader_source() -> Result<String> {
    layout::check_source_version(SOURCE_NAME, SOURCE)?;
    Ok(format!("{}\n{SOURCE}", layout::wgsl_prelude()))
}

struct Bound {
    buffers: Vec<wgpu::Buffer>,
    bind_group: wgpu::BindGroup,
    pipelines: [wgpu::ComputePipeline; 4],
    groups: u32,
}

pub struct WgpuDevice {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    bound: Option<Bound>,
    staging: Option<wgpu::Buffer>,
    readback: Option<Readback>,
    /// The last readback's staging buffer, for the next one.
    readback_spare: Option<wgpu::Buffer>,
}

/// A started [`Device::read_start`] copy: its staging buffer, the bytes it will hold, and
/// the map's result once wgpu calls back.
struct Readback {
    staging: wgpu::Buffer,
    len: u64,
    mapped: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

/// One line: wgpu's validation errors span several (with source excerpts).
fn dev_err(what: &str, e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    let flat: Vec<&str> = text.split_whitespace().collect();
    Error::Device(format!("wgpu: {what}: {}", flat.join(" ")))
}

impl WgpuDevice {
    /// The first adapter with 64-bit shader arithmetic (high-performance preferred).
    pub fn open() -> Result<WgpuDevice> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::PRIMARY,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let need =
            wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_INT64 | wgpu::Features::IMMEDIATES;
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        if adapters.is_empty() {
            return Err(Error::Device(
                "--backend wgpu: no GPU adapter found (no Vulkan, Metal or DX12 driver); on Linux without a GPU install Mesa's lavapipe: apt-get install mesa-vulkan-drivers libvulkan1".into(),
            ));
        }
        let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Cpu => 3,
            wgpu::DeviceType::Other => 4,
        };
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        let adapter = adapters
            .into_iter()
            .filter(|a| a.features().contains(need))
            .min_by_key(rank)
            .ok_or_else(|| {
                Error::Device(format!(
                    "--backend wgpu: no adapter offers 64-bit float and integer shaders and immediate data (SHADER_F64, SHADER_INT64, IMMEDIATES), which the environment's f64 accounting and per-step counter need; found: {}",
                    names.join(", ")
                ))
            })?;
        let limits = adapter.limits();
        if (limits.max_storage_buffers_per_shader_stage as usize) < N_BUFS {
            return Err(Error::Device(format!(
                "--backend wgpu: adapter {} binds {} storage buffers per shader stage, the step kernel needs {N_BUFS}",
                adapter.get_info().name,
                limits.max_storage_buffers_per_shader_stage
            )));
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sim-train envs"),
            required_features: need,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| dev_err("request_device", e))?;
        Ok(WgpuDevice {
            device,
            queue,
            info: adapter.get_info(),
            limits,
            bound: None,
            staging: None,
            readback: None,
            readback_spare: None,
        })
    }

    fn bound(&self) -> Result<&Bound> {
        self.bound
            .as_ref()
            .ok_or_else(|| Error::Device("wgpu: buffers used before alloc".into()))
    }

    /// Runs `f` and turns any validation or memory error it raised into an error.
    fn checked<T>(&self, what: &str, f: impl FnOnce(&wgpu::Device) -> T) -> Result<T> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let out = f(&self.device);
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(dev_err(what, format!("out of device memory: {e}")));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(dev_err(what, e));
        }
        Ok(out)
    }

    fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| dev_err("poll", e))
    }
}

impl Device for WgpuDevice {
    fn describe(&self) -> String {
        format!(
            "{} ({:?}, {})",
            self.info.name, self.info.backend, self.info.driver
        )
    }

    fn capacity(&self) -> Capacity {
        Capacity {
            max_buffer: self
                .limits
                .max_buffer_size
                .min(self.limits.max_storage_buffer_binding_size),
            free: None,
        }
    }

    fn alloc(&mut self, sizes: &[u64; N_BUFS], params: &Params) -> Result<()> {
        let groups = params.n_envs.div_ceil(BLOCK);
        if groups > self.limits.max_compute_workgroups_per_dimension {
            return Err(Error::Device(format!(
                "wgpu: {} environments need {groups} workgroups of {BLOCK}, {} dispatches at most {}: at most {} environments",
                params.n_envs,
                self.info.name,
                self.limits.max_compute_workgroups_per_dimension,
                self.limits.max_compute_workgroups_per_dimension as u64 * BLOCK as u64
            )));
        }
        let source = shader_source()?;
        let bound = self.checked("building the step shader", |device| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(SOURCE_NAME),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let buffers: Vec<wgpu::Buffer> = Buf::ALL
                .iter()
                .map(|b| {
                    device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("{b:?}")),
                        size: sizes[*b as usize],
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_DST
                            | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    })
                })
                .collect();
            let entries: Vec<wgpu::BindGroupLayoutEntry> = Buf::ALL
                .iter()
                .map(|b| wgpu::BindGroupLayoutEntry {
                    binding: *b as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: b.read_only(),
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("envs"),
                entries: &entries,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("envs"),
                layout: &bgl,
                entries: &buffers
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource: b.as_entire_binding(),
                    })
                    .collect::<Vec<_>>(),
            });
            let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("envs"),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 4,
            });
            let pipeline = |entry: Entry| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry.name()),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some(entry.name()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            };
            Bound {
                pipelines: Entry::ALL.map(pipeline),
                buffers,
                bind_group,
                groups,
            }
        })?;
        self.bound = Some(bound);
        Ok(())
    }

    fn write(&mut self, buf: Buf, offset: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let b = &self.bound()?.buffers[buf as usize];
        self.queue.write_buffer(b, offset, bytes);
        Ok(())
    }

    fn read(&mut self, buf: Buf, offset: u64, out: &mut [u8]) -> Result<()> {
        let len = out.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let padded = len.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        if self.staging.as_ref().is_none_or(|s| s.size() < padded) {
            self.staging = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: padded.next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let staging = self.staging.as_ref().expect("created above");
        let src = &self.bound()?.buffers[buf as usize];
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("read"),
            });
        enc.copy_buffer_to_buffer(src, offset, staging, 0, padded);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..padded, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| dev_err("map", e))?
            .map_err(|e| dev_err("map", e))?;
        {
            let view = staging
                .get_mapped_range(0..padded)
                .map_err(|e| dev_err("mapped range", e))?;
            out.copy_from_slice(&view[..out.len()]);
        }
        staging.unmap();
        Ok(())
    }

    fn read_start(&mut self, regions: &[(Buf, u64, usize)]) -> Result<()> {
        if self.readback.is_some() {
            return Err(Error::Device(
                "wgpu: a readback was started before the last one was taken".into(),
            ));
        }
        let len: u64 = regions.iter().map(|r| r.2 as u64).sum();
        if regions.iter().any(|r| r.1 % 4 != 0 || r.2 % 4 != 0) {
            return Err(Error::Device(
                "wgpu: readback regions must be whole 4-byte words".into(),
            ));
        }
        let staging = match self.readback_spare.take() {
            Some(s) if s.size() >= len => s,
            _ => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: len.max(4).next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let b = self.bound()?;
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        let mut at = 0u64;
        for &(buf, offset, bytes) in regions {
            if bytes > 0 {
                enc.copy_buffer_to_buffer(
                    &b.buffers[buf as usize],
                    offset,
                    &staging,
                    at,
                    bytes as u64,
                );
            }
            at += bytes as u64;
        }
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..len.max(4), move |r| {
            let _ = tx.send(r);
        });
        self.readback = Some(Readback {
            staging,
            len,
            mapped: rx,
        });
        Ok(())
    }

    fn read_finish(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        let rb = self
            .readback
            .take()
            .ok_or_else(|| Error::Device("wgpu: no readback was started".into()))?;
        self.device
            .poll(wgpu::PollType::Poll)
            .map_err(|e| dev_err("poll", e))?;
        let (result, waited) = match rb.mapped.try_recv() {
            Ok(r) => (r, false),
            Err(_) => {
                self.wait()?;
                (rb.mapped.recv().map_err(|e| dev_err("map", e))?, true)
            }
        };
        result.map_err(|e| dev_err("map", e))?;
        {
            let view = rb
                .staging
                .get_mapped_range(..rb.len.max(4))
                .map_err(|e| dev_err("mapped range", e))?;
            out.clear();
            out.extend_from_slice(&view[..rb.len as usize]);
        }
        rb.staging.unmap();
        self.readback_spare = Some(rb.staging);
        Ok(waited)
    }

    fn launch(&mut self, entry: Entry, tick: u32) -> Result<()> {
        let b = self.bound()?;
        let pipeline = &b.pipelines[entry as usize];
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(entry.name()),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(entry.name()),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &b.bind_group, &[]);
            pass.set_immediates(0, &tick.to_ne_bytes());
            pass.dispatch_workgroups(b.groups, 1, 1);
        }
        self.queue.submit([enc.finish()]);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.wait()
    }
}
