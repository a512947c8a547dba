//! The CLI commands of protocol feature level 2: edits, deletions,
//! reactions, replies and threads, read markers, file uploads and
//! downloads, profiles, search, presence, typing, room settings and
//! notification levels.

use std::{
    io::{IsTerminal as _, Write as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use confab_sdk::{Client, Progress, SendOptions, Seq, v1};

use crate::{
    commands::{
        Command, Context, connect_authenticated, default_history_page, finish, one_shot, send_patiently, target,
    },
    output::{shown, size_text, terminal_safe},
};

pub async fn run(ctx: &mut Context, command: Command) -> anyhow::Result<()> {
    let client = connect_authenticated(ctx, false, one_shot()).await?;
    run_with(ctx, &client, command).await?;
    finish(ctx, client).await
}

async fn run_with(ctx: &mut Context, client: &Client, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Edit { room, seq, text } => {
            let target = target(client, &room).await?;
            let result = client.edit(target.room, Seq(seq), &text).await?;
            let human = format!("Edited #{seq} in {}.", shown(&target.name));
            ctx.output.changed("edited", &target.name, seq, &result, human);
        }
        Command::Delete { room, seq } => {
            let target = target(client, &room).await?;
            let result = client.delete_message(target.room, Seq(seq)).await?;
            let human = format!("Deleted #{seq} in {}.", shown(&target.name));
            ctx.output.changed("deleted", &target.name, seq, &result, human);
        }
        Command::React { room, seq, emoji, remove } => {
            let target = target(client, &room).await?;
            let result = if remove {
                client.unreact(target.room, Seq(seq), &emoji).await?
            } else {
                client.react(target.room, Seq(seq), &emoji).await?
            };
            let (emoji, name) = (terminal_safe(&emoji), shown(&target.name));
            let human = match (remove, result.duplicate) {
                (false, false) => format!("Reacted {emoji} to #{seq} in {name}."),
                (false, true) => format!("You had already reacted {emoji} to #{seq} in {name}."),
                (true, false) => format!("Took back {emoji} from #{seq} in {name}."),
                (true, true) => format!("You had not reacted {emoji} to #{seq} in {name}."),
            };
            let what = if remove { "unreacted" } else { "reacted" };
            ctx.output.changed(what, &target.name, seq, &result, human);
        }
        Command::Reply { room, seq, text } => {
            if text.trim().is_empty() {
                bail!("nothing to send: give the answer's text after the sequence number");
            }
            let target = target(client, &room).await?;
            let options = SendOptions::new().reply_to(Seq(seq));
            let result = send_patiently(ctx, client, &target.room, &text, options).await?;
            ctx.output.sent(&target.name, &result);
        }
        Command::Thread { room, root_seq, text: Some(text), .. } => {
            if text.trim().is_empty() {
                bail!("nothing to send: give the text after the thread's sequence number");
            }
            let target = target(client, &room).await?;
            let options = SendOptions::new().in_thread(Seq(root_seq));
            let result = send_patiently(ctx, client, &target.room, &text, options).await?;
            ctx.output.sent(&target.name, &result);
        }
        Command::Thread { room, root_seq, text: None, limit } => {
            let target = target(client, &room).await?;
            let limit = limit.unwrap_or_else(|| default_history_page(client));
            let page = client.thread(target.room, Seq(root_seq), v1::HistoryDirection::Backward, Seq(0), limit).await?;
            ctx.output.thread(&target.name, &page);
            if page.has_more && !ctx.output.json {
                ctx.output.notice("older messages of the thread are not shown; ask for more with --limit");
            }
        }
        Command::Read { room, seq } => {
            let target = target(client, &room).await?;
            let seq = match seq {
                Some(seq) => seq,
                None => client.history(target.room.clone(), v1::HistoryDirection::Backward, Seq(0), 1).await?.head_seq,
            };
            let state = client.mark_read(target.room, Seq(seq)).await?;
            ctx.output.read_state(&target.name, &state);
        }
        Command::Upload { room, file, text } => {
            let target = target(client, &room).await?;
            let info = upload(client, &file).await?;
            let options = SendOptions::new().attach(info.file_id.clone());
            let text = text.unwrap_or_default();
            let result = send_patiently(ctx, client, &target.room, &text, options).await?;
            ctx.output.uploaded(&target.name, &info, &result);
        }
        Command::Download { file_id, output } => download(ctx, client, &file_id, output).await?,
        Command::Profile { user } => {
            let name = match user {
                Some(user) => user,
                None => client.user().map(|me| me.name).context("the session has no user")?,
            };
            let profile = client.profile(&name).await?;
            ctx.output.profile(&profile);
        }
        Command::ProfileSet { mut update, avatar } => {
            update.avatar_file_id = match avatar {
                Some(path) if path.as_os_str().is_empty() => Some(String::new()),
                Some(path) => Some(upload(client, &path).await?.file_id),
                None => None,
            };
            let profile = client.set_profile(update).await?;
            ctx.output.profile(&profile);
        }
        Command::SearchUsers { prefix, limit } => {
            let profiles = client.search_users(&prefix, limit.unwrap_or(0)).await?;
            ctx.output.profiles(&profiles);
        }
        Command::SearchRooms { query } => {
            let rooms = client.search_rooms(&query).await?;
            ctx.output.rooms(&rooms);
        }
        Command::Presence { away, status, this_device } => {
            let state = if away { v1::PresenceState::Away } else { v1::PresenceState::Online };
            client.set_presence(state, status.as_deref(), this_device).await?;
            let what = if away { "away" } else { "online" };
            let device = if this_device { " on this device" } else { "" };
            ctx.output.done(what, || {
                format!("You are {what}{device} (shown while one of your clients follows the rooms, such as `tail`).")
            });
        }
        Command::Typing { room, stop } => {
            let target = target(client, &room).await?;
            client.set_typing(target.room, !stop).await?;
            let name = shown(&target.name);
            if stop {
                ctx.output.done("stopped_typing", || format!("Stopped typing in {name}."));
            } else {
                ctx.output.done("typing", || format!("Typing in {name}."));
            }
        }
        Command::RoomSet { room, mut update, avatar } => {
            let target = target(client, &room).await?;
            // Uploaded first, as `profile set --avatar` does; "" removes it.
            update.avatar_file_id = match avatar {
                Some(path) if path.as_os_str().is_empty() => Some(String::new()),
                Some(path) => Some(upload(client, &path).await?.file_id),
                None => update.avatar_file_id,
            };
            let info = client.update_room(target.room, update).await?;
            ctx.output.room("updated", &info);
        }
        Command::Notify { room, level } => {
            let target = target(client, &room).await?;
            let info = client.set_notification_level(target.room, level).await?;
            ctx.output.notifications(&info);
        }
        other => unreachable!("not a conversation command: {other:?}"),
    }
    Ok(())
}

/// Uploads a file, with a progress line on a terminal.
async fn upload(client: &Client, path: &Path) -> anyhow::Result<v1::FileInfo> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut line = ProgressLine::new(&format!("uploading {}", terminal_safe(&name)));
    let result = client.upload_file(path, |progress| line.show(progress)).await;
    line.end();
    Ok(result?)
}

/// Downloads a file to `output` (a file, a directory, or `-` for standard
/// output), by default to its own name in the current directory.
async fn download(ctx: &Context, client: &Client, file_id: &str, output: Option<PathBuf>) -> anyhow::Result<()> {
    if output.as_deref() == Some(Path::new("-")) {
        let mut stdout = tokio::io::stdout();
        client.download(file_id, &mut stdout, |_| {}).await?;
        return Ok(());
    }
    let (path, explicit) = match output {
        Some(path) if path.is_dir() => (path.join(local_name(&client.file_info(file_id).await?.name)), false),
        Some(path) => (path, true),
        None => (PathBuf::from(local_name(&client.file_info(file_id).await?.name)), false),
    };
    if !explicit && path.exists() {
        bail!("{} exists already; choose where to write the file with -o PATH", path.display());
    }
    // Written beside the target, renamed into place once complete.
    let mut partial = path.clone().into_os_string();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut file =
        tokio::fs::File::create(&partial).await.with_context(|| format!("cannot create {}", partial.display()))?;
    let mut line = ProgressLine::new(&format!("downloading {}", terminal_safe(&path.display().to_string())));
    let result = client.download(file_id, &mut file, |progress| line.show(progress)).await;
    line.end();
    drop(file);
    let download = match result {
        Ok(download) => download,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error.into());
        }
    };
    std::fs::rename(&partial, &path).with_context(|| format!("cannot move the download to {}", path.display()))?;
    ctx.output.downloaded(file_id, Some(&path), &download.content_type, download.size);
    Ok(())
}

/// A file name from the server made safe to create here: no directories,
/// no hidden or special names, no control characters.
fn local_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().map(|c| if c.is_control() { '_' } else { c }).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() { "download".to_owned() } else { cleaned }
}

/// `confab: uploading cat.png: 42% (1.1 MiB of 2.6 MiB)` on standard error,
/// rewritten in place, when standard error is a terminal.
struct ProgressLine {
    what: String,
    enabled: bool,
    last_percent: Option<u64>,
}

impl ProgressLine {
    fn new(what: &str) -> Self {
        ProgressLine { what: what.to_owned(), enabled: std::io::stderr().is_terminal(), last_percent: None }
    }

    fn show(&mut self, progress: Progress) {
        if !self.enabled {
            return;
        }
        let percent = match progress.total {
            Some(0) => 100,
            Some(total) => progress.done.saturating_mul(100) / total,
            None => progress.done >> 20,
        };
        if self.last_percent == Some(percent) {
            return;
        }
        self.last_percent = Some(percent);
        let of = match progress.total {
            Some(total) => format!("{percent}% ({} of {})", size_text(progress.done), size_text(total)),
            None => size_text(progress.done),
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2Kconfab: {}: {of}", self.what);
        let _ = stderr.flush();
    }

    fn end(&mut self) {
        if self.enabled && self.last_percent.is_some() {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloaded_files_get_a_harmless_local_name() {
        assert_eq!(local_name("cat.png"), "cat.png");
        assert_eq!(local_name("../../etc/passwd"), "passwd");
        assert_eq!(local_name("..\\windows\\evil.exe"), "evil.exe");
        assert_eq!(local_name(".bashrc"), "bashrc");
        assert_eq!(local_name("a\x1b[2Jb"), "a_[2Jb");
        assert_eq!(local_name(".."), "download");
        assert_eq!(local_name(""), "download");
    }
}
