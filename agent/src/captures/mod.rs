//! Captures in the agent: admission of each request, the scheduler that starts and stops
//! captures under the authorization, the persisted record of each capture, its manifest base,
//! recovery after a crash, and the agent's own traffic every capture excludes.

pub mod admission;
pub mod exclusions;
pub mod manifest;
pub mod record;
pub mod recovery;
pub mod scheduler;

pub use admission::StartRefused;
pub use record::{CaptureRecord, CaptureState, RecordStore};
pub use scheduler::{Scheduler, SchedulerCommand, StopError, Summary};
