//! Captures in the agent: the persisted record of each capture, the scheduler that starts and
//! stops them under the authorization, and the agent's own traffic every capture excludes.

pub mod exclusions;
pub mod manifest;
pub mod record;
pub mod scheduler;

pub use record::{CaptureRecord, CaptureState, RecordStore};
pub use scheduler::{Scheduler, SchedulerCommand, Summary};
