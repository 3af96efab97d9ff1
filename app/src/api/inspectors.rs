//! The signed-in partner's request inspectors: make one, list them, read what one captured,
//! delete one.

use leptos::prelude::*;

use super::AppError;
use crate::domain::{CapturedRequest, InspectorView};

#[cfg(feature = "ssr")]
use crate::service::inspectors as service;

/// An inspector id from a URL or a form; a malformed one is as missing as another partner's.
#[cfg(feature = "ssr")]
fn inspector_id(text: &str) -> Result<crate::domain::InspectorId, AppError> {
    crate::domain::InspectorId::parse(text).map_err(|_| AppError::NotFound)
}

/// The partner's inspectors, newest first.
#[server(endpoint = "inspectors/list")]
pub async fn list_inspectors() -> Result<Vec<InspectorView>, AppError> {
    let (user, state) = super::require_user().await?;
    service::list(&state, &user.partner_id).await
}

/// A new inspector; the page goes to it.
#[server(endpoint = "inspectors/create")]
pub async fn create_inspector(environment: Option<String>) -> Result<InspectorView, AppError> {
    let (user, state) = super::require_admin_in(environment).await?;
    let view = service::create(&state, &user.partner_id, &user.actor()).await?;
    leptos_axum::redirect(&format!("/inspectors/{}", view.id));
    Ok(view)
}

/// One inspector and what it captured, newest first.
#[server(endpoint = "inspectors/get")]
pub async fn get_inspector(id: String) -> Result<(InspectorView, Vec<CapturedRequest>), AppError> {
    let (user, state) = super::require_user().await?;
    let id = inspector_id(&id)?;
    let view = service::get(&state, &user.partner_id, &id).await?;
    let requests = service::requests(&state, &user.partner_id, &id).await?;
    Ok((view, requests))
}

/// Deletes an inspector and what it captured, and goes back to the list.
#[server(endpoint = "inspectors/delete")]
pub async fn delete_inspector(id: String) -> Result<(), AppError> {
    let (user, state) = super::require_admin().await?;
    service::delete(&state, &user.partner_id, &user.actor(), &inspector_id(&id)?).await?;
    leptos_axum::redirect("/inspectors");
    Ok(())
}
