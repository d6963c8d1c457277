//! Upload spools: an attachment's content on local disk while it arrives, then copied into
//! Postgres one chunk at a time inside the write's transaction. However many uploads are in
//! flight, and however slowly they arrive, each costs one chunk of memory.

use sqlx::PgConnection;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use uuid::Uuid;

/// Content received so far, in an anonymous temporary file.
#[derive(Debug)]
pub struct Spool {
    file: tokio::fs::File,
}

impl Spool {
    /// A new empty spool under the system's temporary directory (`TMPDIR`).
    pub async fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("minhu-upload-{}", Uuid::now_v7()));
        let file = tokio::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).await?;
        // Unlinked at once: the space is freed when the upload ends, however it ends (a
        // refusal, a cancelled client, a crashed process) — nothing to clean up later.
        tokio::fs::remove_file(&path).await?;
        Ok(Self { file })
    }

    /// Appends a chunk.
    pub async fn push(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk).await
    }

    /// Stores the spooled content as `attachment_id`'s, reading it back `chunk` bytes at a
    /// time: the chunks go to a temporary table dropped at commit and are joined by
    /// Postgres, so the whole file is never in this process.
    pub async fn store(mut self, tx: &mut PgConnection, attachment_id: Uuid, chunk: usize) -> Result<(), SpoolError> {
        self.file.flush().await?;
        self.file.seek(std::io::SeekFrom::Start(0)).await?;
        sqlx::query("CREATE TEMP TABLE upload_chunks (seq int PRIMARY KEY, bytes bytea NOT NULL) ON COMMIT DROP")
            .execute(&mut *tx)
            .await?;
        let mut buffer = vec![0; chunk.max(1)];
        for seq in 0i32.. {
            let n = read_full(&mut self.file, &mut buffer).await?;
            if n == 0 {
                break;
            }
            sqlx::query("INSERT INTO upload_chunks (seq, bytes) VALUES ($1, $2)")
                .bind(seq)
                .bind(&buffer[..n])
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO attachment_contents (attachment_id, content) \
             SELECT $1, coalesce(string_agg(bytes, ''::bytea ORDER BY seq), ''::bytea) FROM upload_chunks",
        )
        .bind(attachment_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DROP TABLE upload_chunks").execute(tx).await?;
        Ok(())
    }
}

/// Fills `buffer` unless the file ends first; how many bytes were read.
async fn read_full(file: &mut tokio::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = file.read(&mut buffer[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Why a spool could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The temporary file failed (disk full, I/O error).
    #[error("upload spool: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
