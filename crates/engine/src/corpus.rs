//! Demo corpora. WordNet 3.0 (Debian `wordnet-base`, a permissive licence) is
//! the demo knowledge base: ~117k synsets, each a document with its lemmas as
//! title and its gloss (definition and examples) as text.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Where Debian installs WordNet's database.
pub const DEFAULT_WORDNET_DIR: &str = "/usr/share/wordnet";

const PARTS: &[(&str, &str)] = &[
    ("data.noun", "noun"),
    ("data.verb", "verb"),
    ("data.adj", "adj"),
    ("data.adv", "adv"),
];

/// WordNet's lexicographer files, by number (from the WordNet documentation).
const LEXNAMES: &[&str] = &[
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
];

/// One synset as a document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Synset {
    /// `n00001740`: part of speech letter and byte offset, stable across runs.
    pub doc_id: String,
    /// Lemmas joined by ", " (underscores become spaces).
    pub title: String,
    /// The gloss: definition(s) and quoted examples.
    pub text: String,
    /// `noun`, `verb`, `adj` or `adv`.
    pub pos: String,
    /// Lexicographer file, e.g. `noun.animal`.
    pub category: String,
    /// The lemmas.
    pub lemmas: Vec<String>,
}

/// Parse one line of a WordNet `data.*` file (`None` for licence lines).
pub fn parse_data_line(line: &str, pos: &str) -> Option<Synset> {
    if line.starts_with("  ") || line.trim().is_empty() {
        return None;
    }
    let (head, gloss) = line.split_once(" | ").unwrap_or((line, ""));
    let mut fields = head.split_whitespace();
    let offset = fields.next()?;
    let lex_filenum: usize = fields.next()?.parse().ok()?;
    let ss_type = fields.next()?;
    let w_cnt = usize::from_str_radix(fields.next()?, 16).ok()?;
    let mut lemmas = Vec::with_capacity(w_cnt);
    for _ in 0..w_cnt {
        let word = fields.next()?;
        let _lex_id = fields.next()?;
        // Adjective markers such as "(a)", "(p)", "(ip)" are not part of the word.
        let word = word.split('(').next().unwrap_or(word).replace('_', " ");
        if !lemmas.contains(&word) {
            lemmas.push(word);
        }
    }
    let letter = ss_type.chars().next().unwrap_or('x');
    Some(Synset {
        doc_id: format!("{letter}{offset}"),
        title: lemmas.join(", "),
        text: gloss.trim().to_string(),
        pos: pos.to_string(),
        category: LEXNAMES.get(lex_filenum).unwrap_or(&"unknown").to_string(),
        lemmas,
    })
}

/// Whether `dir` holds a WordNet database.
pub fn wordnet_available(dir: &Path) -> bool {
    PARTS.iter().all(|(file, _)| dir.join(file).is_file())
}

/// Convert WordNet to JSONL. With `sample = Some(n)`, keep about `n` synsets
/// spread evenly over the whole database (deterministic). Returns rows written.
pub fn convert_wordnet(dir: &Path, out: &Path, sample: Option<usize>) -> Result<usize> {
    if !wordnet_available(dir) {
        return Err(Error::NotFound(format!(
            "no WordNet database in '{}'; install it with `apt-get install wordnet-base` or pass --dict DIR",
            dir.display()
        )));
    }
    let files: Vec<(PathBuf, &str)> = PARTS.iter().map(|(f, pos)| (dir.join(f), *pos)).collect();
    let stride = match sample {
        None => 1,
        Some(0) => return Err(Error::InvalidInput("--sample must be at least 1".into())),
        Some(n) => {
            let mut total = 0usize;
            for (path, _) in &files {
                total += read_lines(path)?.filter(|l| !l.starts_with("  ")).count();
            }
            (total / n).max(1)
        }
    };
    let mut writer = BufWriter::new(
        File::create(out)
            .map_err(|e| Error::InvalidInput(format!("cannot create '{}': {e}", out.display())))?,
    );
    let mut seen = 0usize;
    let mut written = 0usize;
    for (path, pos) in &files {
        for line in read_lines(path)? {
            let Some(synset) = parse_data_line(&line, pos) else {
                continue;
            };
            seen += 1;
            if !(seen - 1).is_multiple_of(stride) || sample.is_some_and(|n| written >= n) {
                continue;
            }
            serde_json::to_writer(&mut writer, &synset)?;
            writer.write_all(b"\n")?;
            written += 1;
        }
    }
    writer.flush()?;
    Ok(written)
}

fn read_lines(path: &Path) -> Result<impl Iterator<Item = String>> {
    let file = File::open(path)
        .map_err(|e| Error::InvalidInput(format!("cannot read '{}': {e}", path.display())))?;
    Ok(BufReader::new(file).lines().map_while(|l| l.ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_noun_synset() {
        let line = "00002137 03 n 02 abstraction 0 abstract_entity 0 010 @ 00001740 n 0000 | a general concept formed by extracting common features from specific examples  ";
        let s = parse_data_line(line, "noun").unwrap();
        assert_eq!(s.doc_id, "n00002137");
        assert_eq!(s.title, "abstraction, abstract entity");
        assert_eq!(s.category, "noun.Tops");
        assert!(s.text.starts_with("a general concept"));
        assert!(!s.text.ends_with(' '));
    }

    #[test]
    fn strips_adjective_markers_and_skips_licence() {
        let line = "00001740 00 a 01 able(p) 0 005 | (usually followed by `to') having the necessary means; \"able to swim\"";
        let s = parse_data_line(line, "adj").unwrap();
        assert_eq!(s.lemmas, vec!["able".to_string()]);
        assert_eq!(s.category, "adj.all");
        assert!(
            parse_data_line("  1 This software and database is being provided", "adj").is_none()
        );
    }
}
