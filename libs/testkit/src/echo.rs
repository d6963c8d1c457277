//! A tiny service built only from the shared libraries, the way every Minhu service is:
//! authenticated by [`Authenticator`], validated with [`FieldViolations`], migrated and
//! idempotent through `minhu-store`, paginated with [`PageToken`], served by
//! [`GrpcServer`]. The libraries' own integration tests run against it.

use minhu_grpc::{
    ApiError, AuthConfig, Authenticator, FieldViolations, GrpcServer, OrgKind, PageToken, Principal, Role,
    ServerConfig, page_size,
};
use minhu_store::DatabaseConfig;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

/// Generated code for `minhu.testkit.v1`.
#[allow(unreachable_pub, missing_docs)]
pub mod pb {
    tonic::include_proto!("minhu.testkit.v1");

    /// Descriptor set for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/echo_descriptor.bin"));
}

use pb::{
    CreateNoteRequest, EchoRequest, EchoResponse, ListNotesRequest, ListNotesResponse, Note,
    echo_service_server::{EchoService, EchoServiceServer},
};

/// The echo service's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The echo service's RPCs, as a real service scopes its keys.
static RPCS: minhu_grpc::Rpcs = minhu_grpc::Rpcs::new("minhu.testkit.v1.EchoService");

/// The echo service's handlers.
#[derive(Debug, Clone)]
pub struct Echo {
    pool: PgPool,
}

/// Connects, migrates and returns the echo service inside the shared server stack.
pub async fn build(
    database: &DatabaseConfig,
    auth: &AuthConfig,
    config: ServerConfig,
) -> Result<GrpcServer, Box<dyn std::error::Error + Send + Sync>> {
    let pool = minhu_store::connect_and_migrate(database, &[&MIGRATOR]).await?;
    let authenticator = Authenticator::new(auth)?;
    let server = GrpcServer::new(config).register_descriptors(pb::FILE_DESCRIPTOR_SET);
    let service = EchoServiceServer::with_interceptor(Echo { pool }, authenticator);
    Ok(server.add_service(service))
}

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let principal = Principal::of(&request)?;
        principal.require_any_role(&[Role::StreetDispatcher, Role::DistrictOperator, Role::DistrictAdmin])?;
        let input = request.get_ref();
        let mut violations = FieldViolations::new();
        let street_id = violations.required_text("street_id", &input.street_id, 64);
        let message = violations.required_text("message", &input.message, 200);
        violations.check(input.delay_ms <= 10_000, "delay_ms", "must be at most 10000");
        violations.into_result()?;
        principal.require_org(OrgKind::Street, street_id, true)?;
        tokio::time::sleep(std::time::Duration::from_millis(input.delay_ms.into())).await;
        Ok(Response::new(EchoResponse { message: message.to_owned(), caller: principal.subject.clone() }))
    }

    async fn create_note(&self, request: Request<CreateNoteRequest>) -> Result<Response<Note>, Status> {
        let (principal, input) = minhu_grpc::caller(request)?;
        let mut violations = FieldViolations::new();
        let text = violations.required_text("text", &input.text, 200).to_owned();
        violations.optional_text("request_id", &input.request_id, 64);
        violations.into_result()?;

        let key = RPCS.idempotency("CreateNote", &principal, &input.request_id, &input)?;
        let author = principal.subject.clone();
        let note = minhu_store::write(&self.pool, &key, async { Ok::<_, ApiError>(()) }, move |tx, ()| {
            Box::pin(async move {
                let (id,): (i64,) = sqlx::query_as("INSERT INTO notes (text, author) VALUES ($1, $2) RETURNING id")
                    .bind(&text)
                    .bind(&author)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(ApiError::internal)?;
                Ok::<_, ApiError>(Note { id, text, author })
            })
        })
        .await?;
        Ok(Response::new(note))
    }

    async fn list_notes(&self, request: Request<ListNotesRequest>) -> Result<Response<ListNotesResponse>, Status> {
        Principal::of(&request)?;
        let input = request.into_inner();
        let size = page_size(input.page_size, 20, 100)?;
        let codec = PageToken::for_query(&["notes", &input.author]);
        let after: i64 = codec.decode(&input.page_token)?.unwrap_or(0);
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, text, author FROM notes WHERE id > $1 AND ($2 = '' OR author = $2) ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(&input.author)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(ApiError::internal)?;
        // One row more than the page tells whether there is a next page.
        let has_more = rows.len() > size as usize;
        let notes: Vec<Note> =
            rows.into_iter().take(size as usize).map(|(id, text, author)| Note { id, text, author }).collect();
        let next_page_token = match (has_more, notes.last()) {
            (true, Some(last)) => codec.encode(&last.id),
            _ => String::new(),
        };
        Ok(Response::new(ListNotesResponse { notes, next_page_token }))
    }
}
