//! Template deployments (`{scope}/providers/Microsoft.Resources/deployments/{name}`).

use axum::response::Response;
use domain::ResourceId;

use crate::arm::Context;
use crate::error::ApiError;

pub async fn operate(
    context: &Context,
    _scope: &ResourceId,
    _name: Option<&str>,
    _action: Option<&str>,
) -> Result<Response, ApiError> {
    Err(context.no_route())
}
