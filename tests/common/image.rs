//! The image as Docker builds it: the final stage's ENTRYPOINT, CMD and COPYs, read from
//! deploy/Dockerfile (exec form only), and the build-context file behind a path in it.

use std::path::{Path, PathBuf};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the final stage of a Dockerfile sets.
#[derive(Debug, Default)]
pub struct Image {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// (destination in the image, source: a path in the build context, or `None` for a
    /// `COPY --from` of another stage).
    pub copies: Vec<(String, Option<String>)>,
}

pub fn exec_form(instruction: &str, rest: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(rest).map_err(|_| {
        format!(
            "{instruction} {rest}: shell form (Docker runs it under /bin/sh -c, which swallows \
             CMD and the manifests' args); write it as a JSON array"
        )
    })
}

pub fn parse_dockerfile(text: &str) -> Result<Image, String> {
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let mut image = None;
    let mut cmd_set = false;
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let instruction = instruction.to_ascii_uppercase();
        if instruction == "FROM" {
            image = Some(Image::default());
            cmd_set = false;
            continue;
        }
        let image = image.as_mut().ok_or(format!("`{line}` before any FROM"))?;
        match instruction.as_str() {
            "ENTRYPOINT" => {
                image.entrypoint = exec_form("ENTRYPOINT", rest)?;
                // Docker: an ENTRYPOINT resets the CMD the stage did not set itself.
                if !cmd_set {
                    image.cmd.clear();
                }
            }
            "CMD" => {
                image.cmd = exec_form("CMD", rest)?;
                cmd_set = true;
            }
            "COPY" | "ADD" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let from_stage = words.iter().any(|w| w.starts_with("--from="));
                let paths: Vec<&str> = words
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let (dest, sources) = paths.split_last().ok_or(format!("`{line}`: no paths"))?;
                for src in sources {
                    let src = (!from_stage).then(|| src.to_string());
                    image.copies.push((dest.to_string(), src));
                }
            }
            _ => {}
        }
    }
    let image = image.ok_or("no FROM")?;
    if !cmd_set && image.entrypoint.is_empty() {
        return Err(
            "the final stage sets neither ENTRYPOINT nor CMD: the base image's apply".into(),
        );
    }
    Ok(image)
}

pub fn image() -> Image {
    parse_dockerfile(&read("deploy/Dockerfile"))
        .unwrap_or_else(|e| panic!("deploy/Dockerfile: {e}"))
}

/// The build-context file the image holds at `path`, if it COPYs one there.
pub fn image_file(image: &Image, path: &str) -> Option<PathBuf> {
    image.copies.iter().rev().find_map(|(dest, src)| {
        let src = src.as_deref()?;
        let name = Path::new(src).file_name()?.to_str()?;
        let here = dest == path || (dest.ends_with('/') && format!("{dest}{name}") == path);
        here.then(|| Path::new(ROOT).join(src))
    })
}
