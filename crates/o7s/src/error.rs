use crate::ctrl::msg::IrmError;
use crate::ctrl::wire::WireError;

/// Errors of the application library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the IRMd at {path}: {source}; is it running? start it with: irmd (or set O7S_RUNDIR to its run directory)")]
    NoIrmd {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("IRMd: {0}")]
    Irm(#[from] IrmError),
    #[error("IRMd control connection: {0}")]
    Ctrl(#[from] WireError),
    #[error("unexpected answer from the IRMd: {0}")]
    Protocol(String),
    #[error("the flow is down (the peer deallocated it, exited, or the layer lost it)")]
    FlowDown,
    #[error("operation would block")]
    WouldBlock,
    #[error("timed out")]
    Timeout,
    #[error("message of {len} bytes is larger than the flow's maximum of {max} bytes")]
    TooBig { len: usize, max: usize },
    #[error("buffer too small: the next message has {needed} bytes")]
    BufferTooSmall { needed: usize },
    #[error("FRCT: {0}")]
    Frct(String),
    #[error("flow memory: {0}")]
    Shm(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True for the errors that mean the flow is gone for good.
    pub fn is_down(&self) -> bool {
        matches!(self, Error::FlowDown)
    }
}

impl From<o7s_shm::ShmError> for Error {
    fn from(e: o7s_shm::ShmError) -> Self {
        use o7s_shm::ShmError as S;
        match e {
            S::WouldBlock => Error::WouldBlock,
            S::Timeout => Error::Timeout,
            S::Down => Error::FlowDown,
            S::TooBig { len, max } => Error::TooBig { len, max },
            S::BufferTooSmall { needed } => Error::BufferTooSmall { needed },
            other => Error::Shm(other.to_string()),
        }
    }
}
