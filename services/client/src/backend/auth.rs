//! The auth service: `/api/users/*`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Backend, BackendError, Reply, Session, Upstream};

/// The signed-in user, as `currentuser`, `signup` and `signin` describe them.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentUserBody {
    current_user: Option<User>,
}

impl Backend {
    /// Who the session belongs to. No cookie means nobody, without asking the service,
    /// so anonymous pages keep working while auth is down.
    pub async fn current_user(&self, session: &Session) -> Result<Option<User>, BackendError> {
        if !session.is_present() {
            return Ok(None);
        }
        let request = self.request(
            Method::GET,
            Upstream::Auth,
            &["api", "users", "currentuser"],
            session,
        );
        let reply: Reply<CurrentUserBody> = self.json(Upstream::Auth, request).await?;
        Ok(reply.body.current_user)
    }

    pub async fn signup(
        &self,
        session: &Session,
        email: &str,
        password: &str,
    ) -> Result<Reply<User>, BackendError> {
        self.credentials("signup", session, email, password).await
    }

    pub async fn signin(
        &self,
        session: &Session,
        email: &str,
        password: &str,
    ) -> Result<Reply<User>, BackendError> {
        self.credentials("signin", session, email, password).await
    }

    /// Ends the session; the reply carries the cookie that clears it.
    pub async fn signout(&self, session: &Session) -> Result<Reply<()>, BackendError> {
        let request = self.request(
            Method::POST,
            Upstream::Auth,
            &["api", "users", "signout"],
            session,
        );
        Ok(self.send(Upstream::Auth, request).await?.0)
    }

    /// Asks auth to email a link to reset the password of `email`'s account. Auth answers
    /// the same whether or not there is one.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), BackendError> {
        let request = self
            .request(
                Method::POST,
                Upstream::Auth,
                &["api", "users", "password-reset"],
                &Session::ANONYMOUS,
            )
            .json(&json!({ "email": email }));
        self.send(Upstream::Auth, request).await.map(|_| ())
    }

    /// Sets a new password with the token of a reset link (spent by this).
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        password: &str,
    ) -> Result<(), BackendError> {
        let request = self
            .request(
                Method::POST,
                Upstream::Auth,
                &["api", "users", "password-reset", "confirm"],
                &Session::ANONYMOUS,
            )
            .json(&json!({"token": token, "password": password}));
        self.send(Upstream::Auth, request).await.map(|_| ())
    }

    async fn credentials(
        &self,
        action: &str,
        session: &Session,
        email: &str,
        password: &str,
    ) -> Result<Reply<User>, BackendError> {
        let request = self
            .request(
                Method::POST,
                Upstream::Auth,
                &["api", "users", action],
                session,
            )
            .json(&json!({"email": email, "password": password}));
        self.json(Upstream::Auth, request).await
    }
}
