//! Signal processing on 16-bit PCM: resampling, and signal generation and
//! measurement ([`measure`]).

pub mod measure;
mod resample;

pub use resample::Resampler;
