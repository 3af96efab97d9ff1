//! The use cases: one function per thing a partner or the operator does (save a webhook, test
//! it, resend a delivery, publish an event, …). Server functions, REST handlers and CLI
//! commands only translate their input and output around these; each use case checks, writes
//! through the store and wakes the dispatcher when it made work due, so no caller has to
//! remember to.

pub mod accounts;
pub mod audit;
pub mod deliveries;
pub mod events;
pub mod inspectors;
pub mod webhooks;
