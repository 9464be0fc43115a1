//! One PKCS#11 token, reached through its module: the module loaded and
//! initialised, the token's slot found by label, one read-write session
//! logged in as the user. Calls are serialised on that session (PKCS#11
//! sessions are not shared between threads).
//!
//! A failure of the token itself (the module errs, the token is gone, the
//! session broke) drops the whole connection — session, login and the
//! module's initialisation — so the next call starts over with
//! `C_Initialize`: a token that comes back is found again, and while it is
//! away every call fails closed.

use std::sync::{Mutex, MutexGuard};

use coffer_kms::KmsError;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::uri::TokenUri;

/// The token named by a [`TokenUri`], connected on demand.
pub struct Token {
    uri: TokenUri,
    pin: Zeroizing<String>,
    connection: Mutex<Option<Connection>>,
}

struct Connection {
    // Declared first, dropped first: the session closes before the module
    // is finalised.
    session: Session,
    module: Pkcs11,
    slot: Slot,
}

/// A failure of the token or its module, for [`KmsError::Internal`]: the
/// call fails closed and the connection is started over.
pub fn unavailable(what: &str, error: impl std::fmt::Display) -> KmsError {
    KmsError::Internal(format!("the PKCS#11 token is unavailable: {what}: {error}"))
}

impl Token {
    /// Reads the PIN and connects once, so a wrong module, token or PIN
    /// stops the server's start with a clear message.
    pub fn open(uri: TokenUri) -> Result<Token, String> {
        let pin = uri.pin()?;
        let token = Token {
            uri,
            pin,
            connection: Mutex::new(None),
        };
        token
            .with_session(|_| Ok(()))
            .map_err(|e| format!("{}: {e}", token.uri))?;
        Ok(token)
    }

    /// The URI this token was opened from (no PIN in it).
    pub fn uri(&self) -> &TokenUri {
        &self.uri
    }

    /// Runs `operation` on the token's session, connecting first if needed.
    /// When it fails with [`KmsError::Internal`] (the token's own failure),
    /// the connection is dropped, to be made afresh by the next call.
    pub fn with_session<T>(
        &self,
        operation: impl FnOnce(&Session) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let mut connection = self.lock()?;
        if connection.is_none() {
            *connection = Some(self.connect()?);
        }
        let current = connection
            .as_ref()
            .expect("the connection was made just above");
        // The token is asked first whether it is still there: a token taken
        // away can leave a session that just finds nothing, which would read
        // as "no such key" rather than "the HSM is unavailable".
        let result = self
            .check_present(current)
            .and_then(|()| operation(&current.session));
        if let Err(KmsError::Internal(reason)) = &result {
            tracing::warn!(token = %self.uri.token, %reason, "PKCS#11 token failed; reconnecting on the next call");
            *connection = None;
        }
        result
    }

    fn lock(&self) -> Result<MutexGuard<'_, Option<Connection>>, KmsError> {
        self.connection
            .lock()
            .map_err(|_| KmsError::Internal("PKCS#11 session lock poisoned".into()))
    }

    fn connect(&self) -> Result<Connection, KmsError> {
        let module = Pkcs11::new(&self.uri.module).map_err(|e| {
            unavailable(
                &format!("cannot load the module {}", self.uri.module.display()),
                e,
            )
        })?;
        match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(unavailable("C_Initialize", e)),
        }
        let slot = self.find_slot(&module)?;
        let session = module
            .open_rw_session(slot)
            .map_err(|e| unavailable("C_OpenSession", e))?;
        let pin = AuthPin::new(self.pin.as_str().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(Error::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => {
                return Err(KmsError::Internal(format!(
                    "the PKCS#11 token {:?} refused the PIN",
                    self.uri.token
                )));
            }
            Err(e) => return Err(unavailable("C_Login", e)),
        }
        Ok(Connection {
            session,
            module,
            slot,
        })
    }

    fn check_present(&self, connection: &Connection) -> Result<(), KmsError> {
        let info = connection
            .module
            .get_token_info(connection.slot)
            .map_err(|e| unavailable("C_GetTokenInfo", e))?;
        if info.label().trim_end() != self.uri.token {
            return Err(unavailable("C_GetTokenInfo", "the token was replaced"));
        }
        Ok(())
    }

    /// The slot whose token has the URI's label (and serial, if given).
    fn find_slot(&self, module: &Pkcs11) -> Result<Slot, KmsError> {
        let slots = module
            .get_slots_with_token()
            .map_err(|e| unavailable("C_GetSlotList", e))?;
        for slot in slots {
            let Ok(info) = module.get_token_info(slot) else {
                continue;
            };
            let serial_matches = self
                .uri
                .serial
                .as_deref()
                .is_none_or(|serial| info.serial_number().trim_end() == serial);
            if info.label().trim_end() == self.uri.token && serial_matches {
                return Ok(slot);
            }
        }
        Err(unavailable(
            "no token",
            format!(
                "no token labelled {:?} in {}",
                self.uri.token,
                self.uri.module.display()
            ),
        ))
    }
}
