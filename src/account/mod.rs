//! The account lifecycle: joining (sign-up and invitations), keeping the account (email
//! change, credentials, security notifications), recovering it, and leaving (deletion).
//! Each module is a set of domain functions over the store, testable without HTTP; the pages
//! live in `src/ui/`.

pub mod credentials;
pub mod deletion;
pub mod email_change;
pub mod invitations;
pub mod notifications;
pub mod recovery;
pub mod signup;
