//! File parts (raw bytes): CSV and TSV tables, JSON documents, images, and
//! anything else. The type comes from the media type when it is one of
//! those, else from the file name's extension, else from the bytes (image
//! signatures only).

use imagesize::{Compression, ImageSize, ImageType};
use serde_json::{json, Value};

use super::{
    analyze_math_object, dataset, fmt_bytes, plural, shorten, structure, PartAnalysis, PartError,
    PartLimits,
};

/// What a file is treated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// A table; the delimiter when known (else sniffed from the header).
    Csv(Option<u8>),
    Json,
    Image,
    Other,
}

/// The media type without parameters, lower case: `text/csv; charset=utf-8` → `text/csv`.
fn normalize_media(m: &str) -> Option<String> {
    let m = m
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (!m.is_empty()).then_some(m)
}

/// The lower-case extension of a file name.
fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

fn format_of_media(m: &str) -> Option<Format> {
    match m {
        "text/csv"
        | "application/csv"
        | "text/x-csv"
        | "application/x-csv"
        | "text/comma-separated-values" => Some(Format::Csv(None)),
        "text/tab-separated-values" => Some(Format::Csv(Some(b'\t'))),
        "application/json" | "text/json" | "application/x-json" => Some(Format::Json),
        m if m.ends_with("+json") => Some(Format::Json),
        m if m.starts_with("image/") => Some(Format::Image),
        _ => None,
    }
}

const IMAGE_EXTENSIONS: [&str; 29] = [
    "png", "jpg", "jpeg", "jpe", "jfif", "gif", "webp", "bmp", "dib", "tif", "tiff", "ico", "cur",
    "avif", "heic", "heif", "jxl", "psd", "qoi", "tga", "dds", "exr", "hdr", "ppm", "pgm", "pbm",
    "pnm", "ktx2", "svg",
];

fn format_of_extension(e: &str) -> Option<Format> {
    match e {
        "csv" => Some(Format::Csv(None)),
        "tsv" | "tab" => Some(Format::Csv(Some(b'\t'))),
        "json" | "geojson" => Some(Format::Json),
        e if IMAGE_EXTENSIONS.contains(&e) => Some(Format::Image),
        _ => None,
    }
}

/// Analyses a file part.
pub(super) fn analyze_raw(
    bytes: &[u8],
    filename: Option<&str>,
    media_type: Option<&str>,
    limits: &PartLimits,
) -> Result<PartAnalysis, PartError> {
    if bytes.len() > limits.max_part_bytes {
        return Err(PartError::TooLarge(format!(
            "the file is {} ({} bytes); the maximum is {}",
            fmt_bytes(bytes.len()),
            bytes.len(),
            fmt_bytes(limits.max_part_bytes)
        )));
    }
    let media = media_type.and_then(normalize_media);
    let filename = filename.map(str::trim).filter(|f| !f.is_empty());
    let ext = filename.and_then(extension);
    let format = media
        .as_deref()
        .and_then(format_of_media)
        .or_else(|| ext.as_deref().and_then(format_of_extension))
        .unwrap_or_else(|| {
            if sniff_image(bytes).is_some() {
                Format::Image
            } else {
                Format::Other
            }
        });
    let name = filename.map(|f| shorten(f, 60));
    let mut analysis = match format {
        Format::Csv(delimiter) => {
            let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(bytes));
            let table = dataset::from_csv(bytes, delimiter, limits)?;
            let label = match &name {
                Some(n) => format!("CSV file {n}"),
                None => "CSV file".to_string(),
            };
            let mut a = dataset::describe(&table, "csv", &label);
            set(
                &mut a.data,
                "delimiter",
                json!((delimiter as char).to_string()),
            );
            a
        }
        Format::Json => analyze_json_file(bytes, name.as_deref(), limits)?,
        Format::Image => analyze_image(bytes, media.as_deref(), ext.as_deref(), name.as_deref())?,
        Format::Other => other_file(bytes, media.as_deref(), name.as_deref()),
    };
    if let Some(f) = filename {
        set(&mut analysis.data, "filename", json!(f));
    }
    if let Some(m) = &media {
        if analysis.data.get("media_type").is_none() {
            set(&mut analysis.data, "media_type", json!(m));
        }
    }
    set(&mut analysis.data, "bytes", json!(bytes.len()));
    Ok(analysis)
}

/// Sets a key of a JSON object (no-op for other values).
fn set(data: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = data {
        map.insert(key.to_string(), value);
    }
}

/// The most frequent of `,` `;` tab `|` on the first line, outside quotes.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in bytes.iter().take(64 * 1024) {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = candidates.iter().position(|&c| c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let mut best = 0;
    for i in 1..candidates.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    candidates[best]
}

fn analyze_json_file(
    bytes: &[u8],
    name: Option<&str>,
    limits: &PartLimits,
) -> Result<PartAnalysis, PartError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| PartError::Invalid(format!("the file is not valid JSON: {e}")))?;
    let label = match name {
        Some(n) => format!("JSON file {n}"),
        None => "JSON file".to_string(),
    };
    if let Value::Array(items) = &value {
        let records = items.first().is_some_and(Value::is_object);
        let numbers = !items.is_empty() && items.iter().all(Value::is_number);
        if records || numbers {
            let table = dataset::from_records(items, limits)?;
            return Ok(dataset::describe(
                &table,
                "dataset",
                &format!("{label}, dataset"),
            ));
        }
    }
    if let Some(analysis) = analyze_math_object(&value, limits)? {
        return Ok(analysis);
    }
    Ok(structure(&value, "json", &label))
}

/// Name, media type and whether detection by signature alone is reliable.
fn image_info(t: ImageType) -> (&'static str, &'static str, bool) {
    match t {
        ImageType::Png => ("PNG", "image/png", true),
        ImageType::Jpeg => ("JPEG", "image/jpeg", true),
        ImageType::Gif => ("GIF", "image/gif", true),
        ImageType::Webp => ("WebP", "image/webp", true),
        ImageType::Tiff => ("TIFF", "image/tiff", true),
        ImageType::Heif(Compression::Av1) => ("AVIF", "image/avif", true),
        ImageType::Heif(_) => ("HEIF", "image/heif", true),
        ImageType::Jxl => ("JPEG XL", "image/jxl", true),
        ImageType::Psd => ("Photoshop", "image/vnd.adobe.photoshop", true),
        ImageType::Qoi => ("QOI", "image/qoi", true),
        ImageType::Exr => ("OpenEXR", "image/x-exr", true),
        ImageType::Hdr => ("Radiance HDR", "image/vnd.radiance", true),
        ImageType::Dds => ("DDS", "image/vnd-ms.dds", true),
        ImageType::Ktx2 => ("KTX2", "image/ktx2", true),
        ImageType::Farbfeld => ("farbfeld", "image/x-farbfeld", true),
        ImageType::Bmp => ("BMP", "image/bmp", false),
        ImageType::Ico => ("ICO", "image/x-icon", false),
        ImageType::Pnm => ("PNM", "image/x-portable-anymap", false),
        ImageType::Tga => ("TGA", "image/x-tga", false),
        ImageType::Ilbm => ("ILBM", "image/x-ilbm", false),
        ImageType::Vtf => ("VTF", "image/x-vtf", false),
        ImageType::Aseprite => ("Aseprite", "image/x-aseprite", false),
        _ => ("image", "image/*", false),
    }
}

/// `imagesize` on untrusted bytes, treating a panic like a damaged image.
fn read_size(bytes: &[u8]) -> Option<ImageSize> {
    std::panic::catch_unwind(|| imagesize::blob_size(bytes))
        .ok()
        .and_then(Result::ok)
        .filter(|s| s.width > 0 && s.height > 0)
}

fn image_type(bytes: &[u8]) -> Option<ImageType> {
    std::panic::catch_unwind(|| imagesize::image_type(bytes))
        .ok()
        .and_then(Result::ok)
}

/// An image recognised from its bytes alone: a reliable signature, or a
/// weak one (BMP, ICO, TGA, …) on binary data whose size can be read.
fn sniff_image(bytes: &[u8]) -> Option<ImageType> {
    let t = image_type(bytes)?;
    let (_, _, strong) = image_info(t);
    (strong || (!looks_text(bytes) && read_size(bytes).is_some())).then_some(t)
}

/// Declared raster types whose bytes must then be recognisable.
const KNOWN_RASTER: [&str; 15] = [
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/pjpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/x-ms-bmp",
    "image/tiff",
    "image/avif",
    "image/heic",
    "image/heif",
    "image/jxl",
    "image/x-icon",
    "image/vnd.microsoft.icon",
];

fn analyze_image(
    bytes: &[u8],
    media: Option<&str>,
    ext: Option<&str>,
    name: Option<&str>,
) -> Result<PartAnalysis, PartError> {
    let named = name.map_or(String::new(), |n| format!(" {n}"));
    let size_text = fmt_bytes(bytes.len());
    let svg = media == Some("image/svg+xml")
        || ext == Some("svg")
        || looks_text(bytes)
            && String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).contains("<svg");
    if svg {
        let dims = svg_size(bytes);
        let mut data = json!({"format": "SVG", "media_type": "image/svg+xml"});
        let shown = match dims {
            Some((w, h)) => {
                set(&mut data, "width", json!(w));
                set(&mut data, "height", json!(h));
                format!(
                    "{}×{} (from its width/height or viewBox)",
                    fmt_dim(w),
                    fmt_dim(h)
                )
            }
            None => "size not stated".to_string(),
        };
        return Ok(PartAnalysis {
            kind: "image",
            summary: format!("SVG image{named}: {shown}, {size_text}"),
            data,
        });
    }
    let declared = media.filter(|m| m.starts_with("image/"));
    // A weak signature counts only when the size can be read.
    let detected = image_type(bytes).filter(|&t| image_info(t).2 || read_size(bytes).is_some());
    match detected {
        Some(t) => {
            let (format, mime, _) = image_info(t);
            let Some(size) = read_size(bytes) else {
                return Err(PartError::Invalid(format!(
                    "the {format} image{named} is damaged or truncated: its pixel size cannot be \
                     read"
                )));
            };
            let mut data = json!({
                "format": format,
                "media_type": mime,
                "width": size.width,
                "height": size.height,
            });
            let mut note = String::new();
            if let Some(d) = declared {
                if d != mime && !(mime == "image/jpeg" && matches!(d, "image/jpg" | "image/pjpeg"))
                {
                    set(&mut data, "declared_media_type", json!(d));
                    note = format!(" (declared as {d})");
                }
            }
            Ok(PartAnalysis {
                kind: "image",
                summary: format!(
                    "{format} image{named}: {}×{} pixels, {size_text}{note}",
                    size.width, size.height
                ),
                data,
            })
        }
        None => {
            if let Some(d) = declared.filter(|d| KNOWN_RASTER.contains(d)) {
                return Err(PartError::Invalid(format!(
                    "the file{named} is declared as {d}, but its bytes are not a recognised image"
                )));
            }
            if let Some(e) = ext.filter(|e| media.is_none() && IMAGE_EXTENSIONS.contains(e)) {
                return Err(PartError::Invalid(format!(
                    "the file{named} is named .{e}, but its bytes are not a recognised image"
                )));
            }
            let mime = declared.unwrap_or("image/*");
            Ok(PartAnalysis {
                kind: "image",
                summary: format!(
                    "Image{named} ({mime}): {size_text}; the format is not recognised, so its \
                     pixel size is unknown"
                ),
                data: json!({"format": Value::Null, "media_type": mime}),
            })
        }
    }
}

fn fmt_dim(x: f64) -> String {
    super::fmt_f64(x)
}

/// Width and height of an SVG from its `width`/`height` attributes (unitless
/// or `px`), else from its `viewBox`.
fn svg_size(bytes: &[u8]) -> Option<(f64, f64)> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    let start = text.find("<svg")?;
    let tag = &text[start..];
    let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
    let number = |s: &str| {
        let s = s.trim();
        let s = s.strip_suffix("px").unwrap_or(s);
        s.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0)
    };
    if let (Some(w), Some(h)) = (
        attribute(tag, "width").and_then(number),
        attribute(tag, "height").and_then(number),
    ) {
        return Some((w, h));
    }
    let view: Vec<f64> = attribute(tag, "viewBox")?
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    match view[..] {
        [_, _, w, h] if w > 0.0 && h > 0.0 => Some((w, h)),
        _ => None,
    }
}

/// The value of `name="…"` (or single-quoted) in a tag, where `name` is a
/// whole attribute name (`stroke-width` is not `width`).
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = tag[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before = tag[..at].chars().next_back();
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let rest = tag[from..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &rest[1..];
        return body.find(quote).map(|end| &body[..end]);
    }
    None
}

/// Valid UTF-8 without control characters other than tab, new lines and form feed.
fn looks_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| {
        !s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
    })
}

fn other_file(bytes: &[u8], media: Option<&str>, name: Option<&str>) -> PartAnalysis {
    let text = looks_text(bytes);
    let what = match (name, media) {
        (Some(n), Some(m)) => format!("File {n} ({m})"),
        (Some(n), None) => format!("File {n}"),
        (None, Some(m)) => format!("File ({m})"),
        (None, None) => "File".to_string(),
    };
    let mut data = json!({"text": text && !bytes.is_empty()});
    let summary = if bytes.is_empty() {
        format!("{what}: empty (0 bytes)")
    } else if text {
        let s = std::str::from_utf8(bytes).unwrap_or("");
        let lines = s.lines().count();
        let chars = s.chars().count();
        set(&mut data, "lines", json!(lines));
        set(&mut data, "chars", json!(chars));
        format!(
            "{what}: {} of UTF-8 text, {lines} {}",
            fmt_bytes(bytes.len()),
            plural(lines, "line", "lines")
        )
    } else {
        format!("{what}: {} of binary data", fmt_bytes(bytes.len()))
    };
    PartAnalysis {
        kind: "file",
        summary,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::parts::analyze_part;
    use crate::protocol::types::Part;

    fn run(
        bytes: &[u8],
        name: Option<&str>,
        media: Option<&str>,
    ) -> Result<PartAnalysis, PartError> {
        let mut part = Part::raw(bytes.to_vec());
        part.filename = name.map(str::to_string);
        part.media_type = media.map(str::to_string);
        analyze_part(&part, &PartLimits::default())
    }

    /// A minimal PNG: signature and an IHDR chunk (CRC not checked by the reader).
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.extend_from_slice(&13u32.to_be_bytes());
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b
    }

    #[test]
    fn png_dimensions() {
        let a = run(&png(3, 2), Some("dot.png"), Some("image/png")).unwrap();
        assert_eq!(a.kind, "image");
        assert_eq!(a.data["width"], 3);
        assert_eq!(a.data["height"], 2);
        assert_eq!(a.data["format"], "PNG");
        assert_eq!(a.data["bytes"], 33);
        assert_eq!(a.data["filename"], "dot.png");
        assert_eq!(a.summary, "PNG image dot.png: 3×2 pixels, 33 bytes");
        // Sniffed without a name or media type.
        let a = run(&png(640, 480), None, None).unwrap();
        assert_eq!((a.kind, &a.data["width"]), ("image", &json!(640)));
        // Declared as something else: the bytes win, the mismatch is noted.
        let a = run(&png(1, 1), None, Some("image/jpeg")).unwrap();
        assert_eq!(a.data["declared_media_type"], "image/jpeg");
    }

    #[test]
    fn gif_header() {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&10u16.to_le_bytes());
        gif.extend_from_slice(&7u16.to_le_bytes());
        gif.extend_from_slice(&[0, 0, 0]);
        let a = run(&gif, Some("anim.gif"), None).unwrap();
        assert_eq!(a.data["format"], "GIF");
        assert_eq!(a.data["media_type"], "image/gif");
        assert_eq!(
            (&a.data["width"], &a.data["height"]),
            (&json!(10), &json!(7))
        );
    }

    #[test]
    fn broken_images() {
        let e = run(&png(3, 2)[..20], None, Some("image/png")).unwrap_err();
        assert_eq!(e.kind(), "invalid");
        assert!(e.to_string().contains("damaged"), "{e}");
        let e = run(b"hello, this is not a picture", Some("x.png"), None).unwrap_err();
        assert_eq!(e.kind(), "invalid");
        let e = run(b"hello, this is not a picture", None, Some("image/png")).unwrap_err();
        assert!(e.to_string().contains("declared as image/png"), "{e}");
        let a = run(
            b"\x00\x01\x02 raw camera data",
            None,
            Some("image/x-canon-cr2"),
        )
        .unwrap();
        assert_eq!(a.kind, "image");
        assert_eq!(a.data["format"], Value::Null);
    }

    #[test]
    fn svg_size_from_attributes() {
        let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" stroke-width="9" width="120px" height="80"></svg>"#;
        let a = run(svg, Some("logo.svg"), None).unwrap();
        assert_eq!(a.data["format"], "SVG");
        assert_eq!(
            (&a.data["width"], &a.data["height"]),
            (&json!(120.0), &json!(80.0))
        );
        let svg = br#"<svg viewBox="0 0 24 16"/>"#;
        let a = run(svg, None, Some("image/svg+xml")).unwrap();
        assert_eq!(a.data["width"], 24.0);
    }

    #[test]
    fn unknown_binary_and_text_files() {
        let a = run(&[0, 159, 146, 150, 1, 2, 3], Some("blob.bin"), None).unwrap();
        assert_eq!(a.kind, "file");
        assert_eq!(a.data["text"], false);
        assert_eq!(a.data["bytes"], 7);
        assert_eq!(a.summary, "File blob.bin: 7 bytes of binary data");
        let a = run(
            b"line one\nline two\n",
            Some("notes.txt"),
            Some("text/plain; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(a.data["text"], true);
        assert_eq!(a.data["lines"], 2);
        assert_eq!(a.data["media_type"], "text/plain");
        assert_eq!(
            a.summary,
            "File notes.txt (text/plain): 18 bytes of UTF-8 text, 2 lines"
        );
        let a = run(b"", None, None).unwrap();
        assert_eq!(a.summary, "File: empty (0 bytes)");
        // "BM" starts a BMP header but this is text: not sniffed as an image.
        let a = run(b"BMW cars are fast, says the text", None, None).unwrap();
        assert_eq!(a.kind, "file");
    }

    #[test]
    fn csv_files() {
        let csv = b"city,temp\nOslo,2\nRome,14\nLima,19\nCairo,25\n";
        let a = run(csv, Some("weather.csv"), None).unwrap();
        assert_eq!(a.kind, "csv");
        assert_eq!(a.data["count"], 4);
        assert_eq!(a.data["numeric"]["temp"]["mean"], 15.0);
        assert_eq!(a.data["numeric"]["temp"]["median"], 16.5);
        // Sample sd of 2, 14, 19, 25: deviations -13, -1, 4, 10 → 286 / 3.
        let sd = a.data["numeric"]["temp"]["stddev"].as_f64().unwrap();
        assert!((sd - (286.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(a.data["filename"], "weather.csv");
        assert!(a
            .summary
            .starts_with("CSV file weather.csv: 4 records, 2 fields (city, temp)"));
        let a = run(b"a;b\n1;2\n3;4\n", None, Some("text/csv")).unwrap();
        assert_eq!(a.data["delimiter"], ";");
        assert_eq!(a.data["numeric"]["b"]["sum"], 6.0);
        let a = run(b"a\tb\n1\t2\n", Some("t.tsv"), None).unwrap();
        assert_eq!(a.data["numeric"]["a"]["count"], 1);
    }

    #[test]
    fn json_files() {
        let body = br#"[{"x": 1, "y": "a"}, {"x": 2, "y": "b"}, {"x": 6, "y": "a"}]"#;
        let a = run(body, Some("rows.json"), Some("application/json")).unwrap();
        assert_eq!(a.kind, "dataset");
        assert_eq!(a.data["count"], 3);
        assert_eq!(a.data["numeric"]["x"]["mean"], 3.0);
        assert_eq!(a.data["categorical"]["y"]["distinct"], 2);
        let a = run(br#"{"matrix": [[1, 2], [3, 4]]}"#, Some("m.json"), None).unwrap();
        assert_eq!(a.kind, "matrix");
        assert_eq!(a.data["filename"], "m.json");
        let a = run(
            br#"{"equation": "x^2 = 4"}"#,
            None,
            Some("application/json"),
        )
        .unwrap();
        assert_eq!(a.data["solutions"], json!(["-2", "2"]));
        let a = run(
            br#"{"name": "abacus", "tags": ["a", "b"]}"#,
            Some("c.json"),
            None,
        )
        .unwrap();
        assert_eq!(a.kind, "json");
        assert_eq!(a.data["key_count"], 2);
        let e = run(b"{not json", Some("bad.json"), None).unwrap_err();
        assert_eq!(e.kind(), "invalid");
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            run(deep.as_bytes(), Some("d.json"), None)
                .unwrap_err()
                .kind(),
            "invalid"
        );
    }

    #[test]
    fn file_size_is_bounded() {
        let mut part = Part::raw(vec![0; 2048]);
        part.filename = Some("big.bin".into());
        let limits = PartLimits {
            max_part_bytes: 1024,
            ..PartLimits::default()
        };
        let e = analyze_part(&part, &limits).unwrap_err();
        assert_eq!(e.kind(), "too_large");
        assert_eq!(
            e.to_string(),
            "too large: the file is 2.0 KiB (2048 bytes); the maximum is 1.0 KiB"
        );
    }

    #[test]
    fn names_and_media_types() {
        assert_eq!(extension("a/b/Photo.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("noext"), None);
        assert_eq!(
            normalize_media(" Text/CSV ; charset=utf-8").as_deref(),
            Some("text/csv")
        );
        assert_eq!(format_of_media("application/ld+json"), Some(Format::Json));
        assert_eq!(sniff_delimiter(b"\"a,b\";c;d\n1;2;3"), b';');
        assert_eq!(
            attribute(r#"<svg stroke-width="3" width='5'"#, "width"),
            Some("5")
        );
    }
}
