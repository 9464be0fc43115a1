//! A hook that tells an observer (the server's metrics) about every KMS call
//! the embedded KMS answers: its name and outcome, never a key id or context.
//! Lock-free once set; nothing is recorded before an observer is registered.

use std::sync::OnceLock;

/// Receives `(call, outcome)`: the KMS operation (`GenerateDataKey`, …) and
/// `ok` or the AWS exception name of its failure.
pub type CallObserver = fn(call: &'static str, outcome: &'static str);

static OBSERVER: OnceLock<CallObserver> = OnceLock::new();

/// Registers the process's observer of KMS calls; a second registration is
/// ignored (the first observer keeps counting).
pub fn observe_calls(observer: CallObserver) {
    let _ = OBSERVER.set(observer);
}

/// Reports one finished call.
pub(crate) fn call_finished<T>(call: &'static str, result: &Result<T, crate::KmsError>) {
    if let Some(observer) = OBSERVER.get() {
        observer(
            call,
            result.as_ref().map_or_else(|e| e.aws_type(), |_| "ok"),
        );
    }
}
