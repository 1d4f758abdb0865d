//! The reconcile pipeline of one XeroDataset: gather (I/O), validate (pure), plan (pure),
//! execute (I/O), status (I/O).

pub mod plan;
pub mod status;
pub mod validate;
