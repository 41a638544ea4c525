//! Feature outputs of one `hemma extract` run, written into one folder for numpy and pandas.
//!
//! The folder holds `ids.txt` (one id per line), the feature matrices (`embeddings.npy` and
//! `handcrafted.npy`, or one `features.parquet`), and `meta.json`. `meta.json` is removed first and
//! written last, so its presence means the folder is complete and consistent.
//!
//! Every file is written into a temporary file beside its final name, synced, then renamed over it:
//! a reader never sees a half-written file under a final name. Parquet goes through the low-level
//! column writer of the `parquet` crate (no arrow, which would add minutes of compile time), one
//! row group per [`ROW_GROUP_ROWS`] rows, so memory stays bounded whatever the corpus size.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array2, s};
use ndarray_npy::{WriteNpyError, WriteNpyExt};
use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, DataType, FloatType};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::{Type, TypePtr};

/// File holding the ids, one per line, in row order.
pub const IDS_FILE: &str = "ids.txt";
/// File holding the run's metadata; written last, so its presence marks a complete folder.
pub const META_FILE: &str = "meta.json";
/// Npy file of the embedding matrix.
pub const EMBEDDINGS_NPY: &str = "embeddings.npy";
/// Npy file of the handcrafted feature matrix.
pub const HANDCRAFTED_NPY: &str = "handcrafted.npy";
/// Parquet file holding the ids and every feature column.
pub const PARQUET_FILE: &str = "features.parquet";
/// Name of the id column in [`PARQUET_FILE`].
pub const ID_COLUMN: &str = "id";
/// Most rows in one parquet row group; bounds the writer's memory.
pub const ROW_GROUP_ROWS: usize = 4096;

/// Every matrix file this module writes; those a run does not write are removed as stale.
const MATRIX_FILES: [&str; 3] = [EMBEDDINGS_NPY, HANDCRAFTED_NPY, PARQUET_FILE];

/// Which files the feature matrices go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// `embeddings.npy` and `handcrafted.npy`: float32, little-endian, C order.
    Npy,
    /// One `features.parquet`: an `id` string column, then one float column per feature.
    Parquet,
}

/// One finished feature table, rows in input order.
///
/// The names of an absent matrix are ignored.
#[derive(Debug, Clone, Copy)]
pub struct FeatureTable<'a> {
    /// Row ids, one per row; none may contain a line break.
    pub ids: &'a [String],
    /// Embeddings, `[n, D]`.
    pub embeddings: Option<&'a Array2<f32>>,
    /// The `D` embedding column names (`embedding_000`, ...).
    pub embedding_names: &'a [String],
    /// Handcrafted features, `[n, 25]`; may hold NaN, which is kept.
    pub handcrafted: Option<&'a Array2<f32>>,
    /// The handcrafted column names, one per column.
    pub handcrafted_names: &'a [String],
}

/// What failed while writing one file's contents.
#[derive(Debug, thiserror::Error)]
pub enum WriteFailure {
    /// Plain I/O.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Encoding an npy file.
    #[error(transparent)]
    Npy(#[from] WriteNpyError),
    /// Encoding the parquet file.
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    /// Encoding `meta.json`.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Why the outputs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output folder could not be created.
    #[error("creating output folder {path}: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file left by an earlier run could not be removed.
    #[error("removing stale {path}: {source}")]
    RemoveStale {
        /// The stale file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The final path of the file.
        path: PathBuf,
        /// The cause.
        source: WriteFailure,
    },
    /// Syncing the folder after the renames failed.
    #[error("syncing output folder {path}: {source}")]
    SyncDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A matrix has a different number of rows than there are ids.
    #[error("{matrix} has {rows} rows but there are {ids} ids")]
    RowCount {
        /// `embeddings` or `handcrafted`.
        matrix: &'static str,
        /// Rows of the matrix.
        rows: usize,
        /// Number of ids.
        ids: usize,
    },
    /// A matrix has a different number of columns than names.
    #[error("{matrix} has {cols} columns but {names} column names")]
    ColumnCount {
        /// `embeddings` or `handcrafted`.
        matrix: &'static str,
        /// Columns of the matrix.
        cols: usize,
        /// Number of names.
        names: usize,
    },
    /// An id contains a line break, which `ids.txt` cannot hold.
    #[error("id of row {row} contains a line break; {IDS_FILE} holds one id per line")]
    IdLineBreak {
        /// Row index of the id, from 0.
        row: usize,
    },
    /// Two parquet columns would share a name.
    #[error("column name {name:?} appears twice in {PARQUET_FILE}")]
    DuplicateColumn {
        /// The repeated name.
        name: String,
    },
}

/// Writes the table and `meta` into `dir` (created if missing); returns the paths written.
///
/// Nothing in `dir` is touched when the table is inconsistent. Otherwise a stale `meta.json`
/// is removed first, then matrix files of an earlier run that this run does not write, and
/// `meta.json` is written last. The returned paths are in write order, `meta.json` last.
pub fn write_outputs(
    dir: &Path,
    table: &FeatureTable,
    format: OutputFormat,
    meta: &serde_json::Value,
) -> Result<Vec<PathBuf>, OutputError> {
    table.validate()?;
    if format == OutputFormat::Parquet {
        check_unique_columns(table)?;
    }
    fs::create_dir_all(dir).map_err(|source| OutputError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    remove_if_present(&dir.join(META_FILE))?;
    let planned = matrix_files(table, format);
    for stale in MATRIX_FILES.iter().filter(|name| !planned.contains(name)) {
        remove_if_present(&dir.join(stale))?;
    }

    let mut written = vec![write_ids(dir, table.ids)?];
    match format {
        OutputFormat::Npy => {
            for (name, matrix) in npy_files(table) {
                written.push(write_npy(dir, name, matrix)?);
            }
        }
        OutputFormat::Parquet => written.push(write_parquet(dir, table)?),
    }
    written.push(write_meta(dir, meta)?);
    sync_dir(dir)?;
    Ok(written)
}

impl<'a> FeatureTable<'a> {
    /// The present matrices with their labels and column names, embeddings first.
    fn matrices(&self) -> impl Iterator<Item = (&'static str, &'a Array2<f32>, &'a [String])> {
        [
            ("embeddings", self.embeddings, self.embedding_names),
            ("handcrafted", self.handcrafted, self.handcrafted_names),
        ]
        .into_iter()
        .filter_map(|(label, matrix, names)| matrix.map(|m| (label, m, names)))
    }

    /// Checks ids and every matrix's shape against ids and names.
    fn validate(&self) -> Result<(), OutputError> {
        if let Some(row) = self.ids.iter().position(|id| id.contains(['\n', '\r'])) {
            return Err(OutputError::IdLineBreak { row });
        }
        for (matrix, m, names) in self.matrices() {
            check_shape(matrix, m, names, self.ids.len())?;
        }
        Ok(())
    }
}

/// Checks one matrix's rows against the id count and its columns against its names.
fn check_shape(
    matrix: &'static str,
    m: &Array2<f32>,
    names: &[String],
    ids: usize,
) -> Result<(), OutputError> {
    if m.nrows() != ids {
        return Err(OutputError::RowCount {
            matrix,
            rows: m.nrows(),
            ids,
        });
    }
    if m.ncols() != names.len() {
        return Err(OutputError::ColumnCount {
            matrix,
            cols: m.ncols(),
            names: names.len(),
        });
    }
    Ok(())
}

/// Rejects repeated parquet column names (pandas cannot hold them apart).
fn check_unique_columns(table: &FeatureTable) -> Result<(), OutputError> {
    let mut seen = HashSet::from([ID_COLUMN]);
    for (_, _, names) in table.matrices() {
        for name in names {
            if !seen.insert(name.as_str()) {
                return Err(OutputError::DuplicateColumn { name: name.clone() });
            }
        }
    }
    Ok(())
}

/// The npy files of the present matrices, with their matrices.
fn npy_files<'a>(table: &FeatureTable<'a>) -> Vec<(&'static str, &'a Array2<f32>)> {
    [
        (EMBEDDINGS_NPY, table.embeddings),
        (HANDCRAFTED_NPY, table.handcrafted),
    ]
    .into_iter()
    .filter_map(|(name, matrix)| matrix.map(|m| (name, m)))
    .collect()
}

/// The matrix files this run writes.
fn matrix_files(table: &FeatureTable, format: OutputFormat) -> Vec<&'static str> {
    match format {
        OutputFormat::Npy => npy_files(table).into_iter().map(|(name, _)| name).collect(),
        OutputFormat::Parquet => vec![PARQUET_FILE],
    }
}

/// Removes `path` if it exists.
fn remove_if_present(path: &Path) -> Result<(), OutputError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(OutputError::RemoveStale {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes `dir/name` through the one atomic writer ([`hemma_runs::atomic`]): a reader never sees
/// a half-written file under its final name.
fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), WriteFailure>,
) -> Result<PathBuf, OutputError> {
    let path = dir.join(name);
    hemma_runs::atomic::write_atomically(&path, write).map_err(|source| OutputError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Writes `ids.txt`: one id per line, each line ending in `\n`.
fn write_ids(dir: &Path, ids: &[String]) -> Result<PathBuf, OutputError> {
    write_atomic(dir, IDS_FILE, |w| {
        for id in ids {
            w.write_all(id.as_bytes())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Writes one matrix as a float32 little-endian C-order npy file.
fn write_npy(dir: &Path, name: &str, matrix: &Array2<f32>) -> Result<PathBuf, OutputError> {
    write_atomic(dir, name, |w| {
        // ndarray-npy keeps a column-major array's layout (fortran_order: True); copy such an
        // array to C order so every file has the same layout. Free for C-order arrays.
        matrix.as_standard_layout().write_npy(w)?;
        Ok(())
    })
}

/// Writes `meta.json` as pretty JSON with a trailing newline.
fn write_meta(dir: &Path, meta: &serde_json::Value) -> Result<PathBuf, OutputError> {
    write_atomic(dir, META_FILE, |w| {
        serde_json::to_writer_pretty(&mut *w, meta)?;
        w.write_all(b"\n")?;
        Ok(())
    })
}

/// Makes the renames durable (a no-op where folders cannot be opened, as on Windows).
fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| OutputError::SyncDir {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

/// Writes `features.parquet`, one row group per [`ROW_GROUP_ROWS`] rows.
fn write_parquet(dir: &Path, table: &FeatureTable) -> Result<PathBuf, OutputError> {
    write_atomic(dir, PARQUET_FILE, |file| {
        let mut writer =
            SerializedFileWriter::new(file, parquet_schema(table)?, Arc::new(writer_properties()))?;
        let n = table.ids.len();
        for start in (0..n).step_by(ROW_GROUP_ROWS) {
            write_row_group(&mut writer, table, start..n.min(start + ROW_GROUP_ROWS))?;
        }
        // Writes the footer.
        writer.into_inner()?;
        Ok(())
    })
}

/// Snappy (pyarrow's default, cheap to build) and no dictionaries: ids are unique and feature
/// values rarely repeat, so dictionaries would only cost time before falling back to plain.
fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .build()
}

/// The file schema: `id` (required UTF-8 string), then one required float per feature column.
///
/// Built with the type builders rather than `parse_message_type`, so that any column name
/// (spaces, punctuation) is taken as given.
fn parquet_schema(table: &FeatureTable) -> Result<TypePtr, ParquetError> {
    let id = Type::primitive_type_builder(ID_COLUMN, PhysicalType::BYTE_ARRAY)
        .with_repetition(Repetition::REQUIRED)
        .with_logical_type(Some(LogicalType::String))
        .build()?;
    let mut fields = vec![Arc::new(id)];
    for (_, _, names) in table.matrices() {
        for name in names {
            let field = Type::primitive_type_builder(name, PhysicalType::FLOAT)
                .with_repetition(Repetition::REQUIRED)
                .build()?;
            fields.push(Arc::new(field));
        }
    }
    Ok(Arc::new(
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()?,
    ))
}

/// Writes the rows `rows` of every column as one row group.
fn write_row_group<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    table: &FeatureTable,
    rows: Range<usize>,
) -> Result<(), ParquetError> {
    let mut group = writer.next_row_group()?;
    let ids: Vec<ByteArray> = table.ids[rows.clone()]
        .iter()
        .map(|id| ByteArray::from(id.as_str()))
        .collect();
    write_column::<ByteArrayType, _>(&mut group, &ids)?;
    let mut values = Vec::with_capacity(rows.len());
    for (_, matrix, _) in table.matrices() {
        for column in matrix.slice(s![rows.clone(), ..]).columns() {
            values.clear();
            values.extend(column.iter().copied());
            write_column::<FloatType, _>(&mut group, &values)?;
        }
    }
    group.close()?;
    Ok(())
}

/// Writes `values` as the next column chunk of `group`.
fn write_column<T: DataType, W: Write + Send>(
    group: &mut SerializedRowGroupWriter<'_, W>,
    values: &[T::T],
) -> Result<(), ParquetError> {
    let mut column = group.next_column()?.ok_or_else(|| {
        ParquetError::General("the schema has fewer columns than the table".into())
    })?;
    column.typed::<T>().write_batch(values, None, None)?;
    column.close()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;
    use ndarray_npy::read_npy;
    use parquet::basic::ConvertedType;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    use serde_json::json;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:03}")).collect()
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("doc-{i}")).collect()
    }

    /// `[n, d]` with value `row * 100 + col`, and NaN at row 1, column 0.
    fn matrix(n: usize, d: usize) -> Array2<f32> {
        let mut m = Array2::from_shape_fn((n, d), |(r, c)| (r * 100 + c) as f32);
        if n > 1 && d > 0 {
            m[[1, 0]] = f32::NAN;
        }
        m
    }

    fn same_bits(a: &Array2<f32>, b: &Array2<f32>) -> bool {
        a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    fn file_names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn npy_round_trip_keeps_shape_values_and_nan() {
        let dir = tempfile::tempdir().unwrap();
        let (ids, emb, hc) = (ids(3), matrix(3, 4), matrix(3, 25));
        // Column-major input must still come out in C order.
        let hc_f = Array2::from_shape_vec((3, 25).f(), hc.t().iter().copied().collect()).unwrap();
        assert!(same_bits(&hc, &hc_f) && !hc_f.is_standard_layout());
        let (en, hn) = (names("embedding_", 4), names("h", 25));
        let table = FeatureTable {
            ids: &ids,
            embeddings: Some(&emb),
            embedding_names: &en,
            handcrafted: Some(&hc_f),
            handcrafted_names: &hn,
        };
        let out = dir.path().join("out");
        let written = write_outputs(&out, &table, OutputFormat::Npy, &json!({"k": 1})).unwrap();
        let expect: Vec<PathBuf> = [IDS_FILE, EMBEDDINGS_NPY, HANDCRAFTED_NPY, META_FILE]
            .iter()
            .map(|n| out.join(n))
            .collect();
        assert_eq!(written, expect);

        let emb_back: Array2<f32> = read_npy(out.join(EMBEDDINGS_NPY)).unwrap();
        let hc_back: Array2<f32> = read_npy(out.join(HANDCRAFTED_NPY)).unwrap();
        assert!(same_bits(&emb, &emb_back));
        assert!(same_bits(&hc, &hc_back));
        assert!(hc_back[[1, 0]].is_nan());
        for name in [EMBEDDINGS_NPY, HANDCRAFTED_NPY] {
            let raw = fs::read(out.join(name)).unwrap();
            let header = String::from_utf8_lossy(&raw[..128]);
            assert!(header.contains("'descr': '<f4'"), "{header}");
            assert!(header.contains("'fortran_order': False"), "{header}");
        }
        assert_eq!(
            fs::read_to_string(out.join(IDS_FILE)).unwrap(),
            "doc-0\ndoc-1\ndoc-2\n"
        );
    }

    #[test]
    fn parquet_round_trip_schema_rows_values() {
        let dir = tempfile::tempdir().unwrap();
        let n = ROW_GROUP_ROWS + 3; // two row groups
        let (ids, emb, hc) = (ids(n), matrix(n, 2), matrix(n, 3));
        let en = names("embedding_", 2);
        let hn = vec!["n words".to_string(), "ttr".into(), "é (x)".into()];
        let table = FeatureTable {
            ids: &ids,
            embeddings: Some(&emb),
            embedding_names: &en,
            handcrafted: Some(&hc),
            handcrafted_names: &hn,
        };
        let written = write_outputs(dir.path(), &table, OutputFormat::Parquet, &json!({})).unwrap();
        assert_eq!(written[1], dir.path().join(PARQUET_FILE));

        let reader = SerializedFileReader::new(File::open(&written[1]).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), n as i64);
        assert_eq!(meta.num_row_groups(), 2);
        assert_eq!(meta.row_group(0).num_rows(), ROW_GROUP_ROWS as i64);
        assert_eq!(
            meta.row_group(0).column(1).compression(),
            Compression::SNAPPY
        );
        let schema = meta.file_metadata().schema_descr();
        let cols: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
        assert_eq!(
            cols,
            [
                "id",
                "embedding_000",
                "embedding_001",
                "n words",
                "ttr",
                "é (x)"
            ]
        );
        let id = schema.column(0);
        assert_eq!(id.physical_type(), PhysicalType::BYTE_ARRAY);
        assert_eq!(id.logical_type_ref(), Some(&LogicalType::String));
        assert_eq!(id.converted_type(), ConvertedType::UTF8);
        for c in schema.columns() {
            assert_eq!(
                c.self_type().get_basic_info().repetition(),
                Repetition::REQUIRED
            );
        }
        assert!(
            schema.columns()[1..]
                .iter()
                .all(|c| c.physical_type() == PhysicalType::FLOAT)
        );

        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), n);
        assert_eq!(rows[0].get_string(0).unwrap(), "doc-0");
        assert_eq!(
            rows[n - 1].get_string(0).unwrap(),
            &format!("doc-{}", n - 1)
        );
        assert!(rows[1].get_float(1).unwrap().is_nan()); // embeddings [1, 0]
        assert!(rows[1].get_float(3).unwrap().is_nan()); // handcrafted [1, 0]
        assert_eq!(rows[1].get_float(2).unwrap(), 101.0);
        let last = n - 1;
        assert_eq!(rows[last].get_float(5).unwrap(), (last * 100 + 2) as f32);
    }

    #[test]
    fn parquet_with_no_rows_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let (emb, en) = (Array2::<f32>::zeros((0, 2)), names("embedding_", 2));
        let table = FeatureTable {
            ids: &[],
            embeddings: Some(&emb),
            embedding_names: &en,
            handcrafted: None,
            handcrafted_names: &[],
        };
        write_outputs(dir.path(), &table, OutputFormat::Parquet, &json!({})).unwrap();
        let file = File::open(dir.path().join(PARQUET_FILE)).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
        assert_eq!(
            reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .num_columns(),
            3
        );
    }

    #[test]
    fn shape_mismatch_names_the_matrix_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (ids, emb, hc) = (ids(3), matrix(3, 4), matrix(2, 25));
        let (en, hn) = (names("embedding_", 4), names("h", 25));
        let mut table = FeatureTable {
            ids: &ids,
            embeddings: Some(&emb),
            embedding_names: &en,
            handcrafted: Some(&hc),
            handcrafted_names: &hn,
        };
        let err = write_outputs(dir.path(), &table, OutputFormat::Npy, &json!({})).unwrap_err();
        assert!(matches!(
            err,
            OutputError::RowCount {
                matrix: "handcrafted",
                rows: 2,
                ids: 3
            }
        ));
        assert!(err.to_string().contains("handcrafted"), "{err}");

        table.handcrafted = None;
        table.embedding_names = &en[..3];
        let err = write_outputs(dir.path(), &table, OutputFormat::Npy, &json!({})).unwrap_err();
        assert!(matches!(
            err,
            OutputError::ColumnCount {
                matrix: "embeddings",
                cols: 4,
                names: 3
            }
        ));
        assert!(err.to_string().contains("embeddings"), "{err}");
        assert!(file_names(dir.path()).is_empty());
    }

    #[test]
    fn id_with_line_break_names_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let ids = vec!["a".to_string(), "b\nc".into()];
        let table = FeatureTable {
            ids: &ids,
            embeddings: None,
            embedding_names: &[],
            handcrafted: None,
            handcrafted_names: &[],
        };
        let err = write_outputs(dir.path(), &table, OutputFormat::Npy, &json!({})).unwrap_err();
        assert!(matches!(err, OutputError::IdLineBreak { row: 1 }));
        assert!(err.to_string().contains("row 1"), "{err}");
    }

    #[test]
    fn duplicate_parquet_column_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (ids, hc) = (ids(1), matrix(1, 2));
        let hn = vec!["x".to_string(), "id".into()];
        let table = FeatureTable {
            ids: &ids,
            embeddings: None,
            embedding_names: &[],
            handcrafted: Some(&hc),
            handcrafted_names: &hn,
        };
        let err = write_outputs(dir.path(), &table, OutputFormat::Parquet, &json!({})).unwrap_err();
        assert!(matches!(err, OutputError::DuplicateColumn { ref name } if name == "id"));
    }

    #[test]
    fn single_matrix_tables_write_only_their_files() {
        let (ids, m) = (ids(2), matrix(2, 3));
        let n = names("c", 3);
        let only = |emb: bool| FeatureTable {
            ids: &ids,
            embeddings: emb.then_some(&m),
            embedding_names: &n,
            handcrafted: (!emb).then_some(&m),
            handcrafted_names: &n,
        };
        for (emb, file) in [(true, EMBEDDINGS_NPY), (false, HANDCRAFTED_NPY)] {
            let dir = tempfile::tempdir().unwrap();
            write_outputs(dir.path(), &only(emb), OutputFormat::Npy, &json!({})).unwrap();
            assert_eq!(file_names(dir.path()), sorted([IDS_FILE, file, META_FILE]));
            let dir = tempfile::tempdir().unwrap();
            write_outputs(dir.path(), &only(emb), OutputFormat::Parquet, &json!({})).unwrap();
            assert_eq!(
                file_names(dir.path()),
                sorted([IDS_FILE, PARQUET_FILE, META_FILE])
            );
        }
    }

    fn sorted<const N: usize>(names: [&str; N]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn meta_is_written_last_and_stale_files_go() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(META_FILE), "stale").unwrap();
        fs::write(dir.path().join(HANDCRAFTED_NPY), "stale").unwrap();
        let (ids, emb) = (ids(2), matrix(2, 3));
        let en = names("embedding_", 3);
        let table = FeatureTable {
            ids: &ids,
            embeddings: Some(&emb),
            embedding_names: &en,
            handcrafted: None,
            handcrafted_names: &[],
        };
        let meta = json!({"model": "m", "n": 2});
        let written = write_outputs(dir.path(), &table, OutputFormat::Npy, &meta).unwrap();
        assert_eq!(written.last(), Some(&dir.path().join(META_FILE)));
        let text = fs::read_to_string(dir.path().join(META_FILE)).unwrap();
        assert!(
            text.ends_with("}\n") && text.contains("\n  \"model\""),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            meta
        );
        assert_eq!(
            file_names(dir.path()),
            sorted([IDS_FILE, EMBEDDINGS_NPY, META_FILE])
        );
    }

    #[test]
    fn failed_run_leaves_no_meta() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(META_FILE), "stale").unwrap();
        // A folder under the ids file's name makes its rename, and so the first write, fail.
        fs::create_dir(dir.path().join(IDS_FILE)).unwrap();
        fs::write(dir.path().join(IDS_FILE).join("x"), "x").unwrap();
        let ids = ids(1);
        let table = FeatureTable {
            ids: &ids,
            embeddings: None,
            embedding_names: &[],
            handcrafted: None,
            handcrafted_names: &[],
        };
        let err = write_outputs(dir.path(), &table, OutputFormat::Npy, &json!({})).unwrap_err();
        assert!(matches!(err, OutputError::Write { ref path, .. } if path.ends_with(IDS_FILE)));
        assert!(err.to_string().contains(IDS_FILE), "{err}");
        assert!(!dir.path().join(META_FILE).exists());
    }
}
