//! The dependency parser (PORT.md): a greedy arc-eager transition parser over the token
//! vectors, then spaCy's finalisation (sentence starts from the tree, deprojectivisation).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::NlpError;
use super::cancel::Cancel;
use super::gemm::Dense;
use super::thinc::ThincModel;
use super::tok2vec::WIDTH;

const SHIFT: u8 = 0;
const REDUCE: u8 = 1;
const LEFT: u8 = 2;
const RIGHT: u8 = 3;
const BREAK: u8 = 4;
/// Feature slots, hidden width and maxout pieces of the parser's lower layer.
const NF: usize = 8;
const HIDDEN: usize = 64;
const NP: usize = 2;
/// Transitions between two checks of the cancellation flag.
const CANCEL_EVERY: usize = 32;

/// A parse: per token its head (itself for a root), label and sentence start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse {
    /// Head index; a root is its own head.
    pub heads: Vec<usize>,
    /// Dependency label (`ROOT` for roots).
    pub deps: Vec<String>,
    /// Whether a sentence starts at the token (always true for token 0 of a non-empty text).
    pub sent_starts: Vec<bool>,
}

/// The parser model.
#[derive(Debug)]
pub struct Parser {
    /// tok2vec -> 64 projection (64, 96) and bias.
    lin_w: Dense,
    lin_b: Vec<f32>,
    /// Lower layer (NF*HIDDEN*NP, 64), its bias (128) and one pad vector (128) per slot.
    low_w: Dense,
    low_b: Vec<f32>,
    low_pad: Vec<f32>,
    /// Output layer, transposed and zero-padded to whole tiles: (64, classes rounded up to
    /// [`TILE`]), so one hidden unit updates a tile of class scores at once; and the bias.
    up_wt: Vec<f32>,
    up_b: Vec<f32>,
    /// Whether this CPU runs the AVX-512 build of [`class_scores`].
    avx512: bool,
    /// Classes in model order: (move, label).
    actions: Vec<(u8, String)>,
}

#[derive(serde::Deserialize)]
struct MovesFile {
    moves: String,
}

impl Parser {
    /// Loads `<model_dir>/parser/{model,moves}`.
    pub fn load(model_dir: &Path) -> Result<Parser, NlpError> {
        let moves_path = model_dir.join("parser/moves");
        let format = |message: String| NlpError::Format {
            path: moves_path.clone(),
            message,
        };
        let bytes = std::fs::read(&moves_path).map_err(|source| NlpError::Read {
            path: moves_path.clone(),
            source,
        })?;
        let file: MovesFile = rmp_serde::from_slice(&bytes).map_err(|e| format(e.to_string()))?;
        let moves: BTreeMap<String, BTreeMap<String, u64>> =
            serde_json::from_str(&file.moves).map_err(|e| format(e.to_string()))?;
        let mut actions = Vec::new();
        for (action, labels) in &moves {
            let mv: u8 = action
                .parse()
                .map_err(|_| format(format!("action key {action:?} is not a number")))?;
            // Highest frequency first, ties by label descending (Python: sorted(...)[::-1]).
            let mut by_freq: Vec<(u64, &String)> = labels.iter().map(|(l, f)| (*f, l)).collect();
            by_freq.sort();
            by_freq.reverse();
            actions.extend(by_freq.into_iter().map(|(_, l)| (mv, l.clone())));
        }
        let model = ThincModel::load(&model_dir.join("parser/model"))?;
        let n = actions.len();
        let lin_w = model.param(6, "W", &[HIDDEN, WIDTH])?;
        let low_w = model.param(2, "W", &[NF, HIDDEN, NP, HIDDEN])?;
        let up_w = model.param(3, "W", &[n, HIDDEN])?;
        let shaped = |rows, cols, data| {
            Array2::from_shape_vec((rows, cols), data).expect("the shape was checked")
        };
        Ok(Parser {
            lin_w: Dense::new(shaped(HIDDEN, WIDTH, lin_w.data)),
            lin_b: model.param(6, "b", &[HIDDEN])?.data,
            low_w: Dense::new(shaped(NF * HIDDEN * NP, HIDDEN, low_w.data)),
            low_b: model.param(2, "b", &[HIDDEN, NP])?.data,
            low_pad: model.param(2, "pad", &[1, NF, HIDDEN, NP])?.data,
            up_wt: pad_transposed(&shaped(n, HIDDEN, up_w.data)),
            avx512: avx512_available(),
            up_b: model.param(3, "b", &[n])?.data,
            actions,
        })
    }

    /// Parses one document's token vectors. `tok0_sent_start` is false when the tokenizer's
    /// special-case pass replaced a span at token 0; `is_space` marks whitespace tokens;
    /// the two buffers are scratch for the projected and precomputed matrices. Stops with
    /// [`NlpError::Cancelled`] within 32 transitions once `cancel` is set.
    pub fn parse(
        &self,
        vectors: ArrayView2<f32>,
        tok0_sent_start: bool,
        is_space: &[bool],
        (projected, precomputed): (&mut Vec<f32>, &mut Vec<f32>),
        cancel: &Cancel,
    ) -> Result<Parse, NlpError> {
        let n = vectors.nrows();
        let mut st = State::new(n, tok0_sent_start);
        if n > 0 {
            let mut u = self.lin_w.apply_into(vectors, projected);
            for mut row in u.rows_mut() {
                row.iter_mut().zip(&self.lin_b).for_each(|(v, b)| *v += b);
            }
            let u = u.view();
            let pre = self.low_w.apply_into(u, precomputed); // (n, NF*128)
            let pre = pre
                .into_slice()
                .expect("matmul_into gives a standard-layout view");
            let width = HIDDEN * NP;
            let n_classes = self.actions.len();
            let mut scores = vec![0f32; n_classes.next_multiple_of(TILE)];
            let mut h = [0f32; HIDDEN * NP];
            let mut steps = 0usize;
            while !st.is_final() {
                if steps.is_multiple_of(CANCEL_EVERY) {
                    cancel.check()?;
                }
                steps += 1;
                let ids = st.context();
                h.fill(0.0);
                for (f, &t) in ids.iter().enumerate() {
                    let src = if t < 0 {
                        &self.low_pad[f * width..(f + 1) * width]
                    } else {
                        let at = (t as usize * NF + f) * width;
                        &pre[at..at + width]
                    };
                    h.iter_mut().zip(src).for_each(|(a, b)| *a += b);
                }
                h.iter_mut().zip(&self.low_b).for_each(|(a, b)| *a += b);
                let mut hid = [0f32; HIDDEN];
                for (o, v) in hid.iter_mut().enumerate() {
                    *v = h[2 * o].max(h[2 * o + 1]);
                }
                class_scores(&self.up_wt, &hid, &mut scores, self.avx512);
                scores.iter_mut().zip(&self.up_b).for_each(|(s, b)| *s += b);
                let valid = st.valid();
                let mut best: Option<usize> = None;
                for (k, (mv, _)) in self.actions.iter().enumerate() {
                    if valid[*mv as usize] && best.is_none_or(|b| scores[k] > scores[b]) {
                        best = Some(k);
                    }
                }
                match best {
                    Some(k) => {
                        let (mv, label) = &self.actions[k];
                        st.apply(*mv, label);
                    }
                    // spaCy forces the state final; never seen in practice.
                    None => break,
                }
            }
        }
        finalize(&st, is_space, cancel)
    }
}

/// Class scores per tile, kept in registers across the 64 hidden units.
const TILE: usize = 64;

fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `w` (classes, 64) transposed to (64, classes padded with zeros to a multiple of [`TILE`]).
fn pad_transposed(w: &Array2<f32>) -> Vec<f32> {
    let padded = w.nrows().next_multiple_of(TILE);
    let mut out = vec![0f32; HIDDEN * padded];
    for ((k, o), v) in w.indexed_iter() {
        out[o * padded + k] = *v;
    }
    out
}

/// `scores[k] = Σ_o hid[o] · W[k][o]`, summed in o order with a separate multiply and add (the
/// rounding of the sequential dot product), for every (padded) class.
#[inline(always)]
fn class_scores_tiled(up_wt: &[f32], hid: &[f32; HIDDEN], scores: &mut [f32]) {
    let padded = scores.len();
    for (t, out) in scores.chunks_exact_mut(TILE).enumerate() {
        let mut acc = [0f32; TILE];
        for (o, &h) in hid.iter().enumerate() {
            let w = &up_wt[o * padded + t * TILE..o * padded + (t + 1) * TILE];
            for (a, w) in acc.iter_mut().zip(w) {
                *a += w * h;
            }
        }
        out.copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn class_scores_avx512(up_wt: &[f32], hid: &[f32; HIDDEN], scores: &mut [f32]) {
    class_scores_tiled(up_wt, hid, scores);
}

/// [`class_scores_tiled`], compiled for AVX-512 when `avx512` (same results: Rust never fuses a
/// multiply and an add).
fn class_scores(up_wt: &[f32], hid: &[f32; HIDDEN], scores: &mut [f32], avx512: bool) {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: `avx512` comes from `is_x86_feature_detected!("avx512f")` at load.
        unsafe { class_scores_avx512(up_wt, hid, scores) };
        return;
    }
    let _ = avx512;
    class_scores_tiled(up_wt, hid, scores);
}

/// The arc-eager parse state (PORT.md).
#[derive(Debug)]
struct State {
    n: usize,
    tok0_sent_start: bool,
    heads: Vec<i64>,
    labels: Vec<String>,
    stack: Vec<usize>,
    rebuffer: Vec<usize>,
    b_i: usize,
    unshiftable: Vec<bool>,
    sent_starts: Vec<bool>,
    /// Per head, children attached left/right of it, in insertion order.
    left_arcs: Vec<Vec<usize>>,
    right_arcs: Vec<Vec<usize>>,
}

impl State {
    fn new(n: usize, tok0_sent_start: bool) -> State {
        State {
            n,
            tok0_sent_start,
            heads: vec![-1; n],
            labels: vec![String::new(); n],
            stack: Vec::new(),
            rebuffer: Vec::new(),
            b_i: 0,
            unshiftable: vec![false; n],
            sent_starts: vec![false; n],
            left_arcs: vec![Vec::new(); n],
            right_arcs: vec![Vec::new(); n],
        }
    }

    fn s(&self, i: usize) -> i64 {
        if i < self.stack.len() {
            self.stack[self.stack.len() - 1 - i] as i64
        } else {
            -1
        }
    }

    fn b(&self, i: usize) -> i64 {
        if i < self.rebuffer.len() {
            return self.rebuffer[self.rebuffer.len() - 1 - i] as i64;
        }
        let b = self.b_i + (i - self.rebuffer.len());
        if b < self.n { b as i64 } else { -1 }
    }

    fn buffer_length(&self) -> usize {
        (self.n - self.b_i) + self.rebuffer.len()
    }

    fn is_final(&self) -> bool {
        self.stack.is_empty() && self.buffer_length() == 0
    }

    fn is_sent_start(&self, w: i64) -> bool {
        if w == 0 && self.tok0_sent_start && self.n > 0 {
            return true;
        }
        w >= 0 && (w as usize) < self.n && self.sent_starts[w as usize]
    }

    /// The child of the most recently added arc of `head`, or -1.
    fn last_child(arcs: &[Vec<usize>], head: i64) -> i64 {
        if head < 0 {
            return -1;
        }
        arcs[head as usize].last().map_or(-1, |&c| c as i64)
    }

    fn context(&self) -> [i64; NF] {
        let (b0, s0) = (self.b(0), self.s(0));
        [
            b0,
            self.b(1),
            s0,
            self.s(1),
            self.s(2),
            Self::last_child(&self.left_arcs, b0),
            Self::last_child(&self.left_arcs, s0),
            Self::last_child(&self.right_arcs, s0),
        ]
    }

    fn valid(&self) -> [bool; 5] {
        let (depth, len) = (self.stack.len(), self.buffer_length());
        let b0 = self.b(0);
        let shift =
            depth == 0 || !(len < 2 || self.is_sent_start(b0) || self.unshiftable[b0 as usize]);
        let arc = depth > 0 && len > 0 && !self.is_sent_start(b0);
        let brk = len >= 2 && self.b(1) == b0 + 1 && !self.is_sent_start(self.b(1));
        [shift, depth > 0, arc, arc, brk]
    }

    fn push(&mut self) {
        match self.rebuffer.pop() {
            Some(t) => self.stack.push(t),
            None => {
                self.stack.push(self.b_i);
                self.b_i += 1;
            }
        }
    }

    fn add_arc(&mut self, head: usize, child: usize, label: &str) {
        if self.heads[child] >= 0 {
            let old = self.heads[child] as usize;
            let arcs = if old > child {
                &mut self.left_arcs[old]
            } else {
                &mut self.right_arcs[old]
            };
            // Only the most recent arc can be removed (spaCy's other branch edits a copy).
            if arcs.last() == Some(&child) {
                arcs.pop();
            }
        }
        if head > child {
            self.left_arcs[head].push(child);
        } else {
            self.right_arcs[head].push(child);
        }
        self.heads[child] = head as i64;
        self.labels[child] = label.to_owned();
    }

    fn apply(&mut self, mv: u8, label: &str) {
        match mv {
            SHIFT => self.push(),
            REDUCE => {
                if let Some(&s0) = self.stack.last() {
                    if self.heads[s0] < 0 && self.stack.len() > 1 {
                        // Unshift: back to the buffer, never to be shifted again.
                        self.unshiftable[s0] = true;
                        self.rebuffer.push(s0);
                    }
                    self.stack.pop();
                }
            }
            LEFT => {
                let (b0, s0) = (self.b(0) as usize, self.s(0) as usize);
                self.add_arc(b0, s0, label);
                self.unshiftable[b0] = false;
                self.stack.pop();
            }
            RIGHT => {
                let (s0, b0) = (self.s(0) as usize, self.b(0) as usize);
                self.add_arc(s0, b0, label);
                self.push();
            }
            BREAK => {
                let b1 = self.b(1) as usize;
                self.sent_starts[b1] = true;
            }
            _ => {}
        }
    }
}

/// Left/right edges and sentence starts from the heads (`Doc.set_children_from_heads`).
fn children_from_heads(heads: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<bool>) {
    let n = heads.len();
    let mut l_edge: Vec<usize> = (0..n).collect();
    let mut r_edge: Vec<usize> = (0..n).collect();
    for _ in 0..12 {
        for i in 0..n {
            let h = heads[i];
            l_edge[h] = l_edge[h].min(l_edge[i]);
            r_edge[h] = r_edge[h].max(r_edge[i]);
        }
        for i in (0..n).rev() {
            let h = heads[i];
            r_edge[h] = r_edge[h].max(r_edge[i]);
            l_edge[h] = l_edge[h].min(l_edge[i]);
        }
        let mut starts = vec![false; n];
        for i in 0..n {
            if heads[i] == i {
                starts[l_edge[i]] = true;
            }
        }
        let mut ok = true;
        let mut cs = 0;
        for (i, &start) in starts.iter().enumerate() {
            if (i > 0 && start) || i == n - 1 {
                if (cs..i).any(|j| heads[j] < cs || heads[j] > i) {
                    ok = false;
                    break;
                }
                cs = i;
            }
        }
        if ok {
            break;
        }
    }
    let mut sent_start = vec![false; n];
    for i in 0..n {
        if heads[i] == i {
            sent_start[l_edge[i]] = true;
        }
    }
    (l_edge, r_edge, sent_start)
}

/// Heads and labels from the final state, deprojectivised, with sentence starts (PORT.md).
fn finalize(st: &State, is_space: &[bool], cancel: &Cancel) -> Result<Parse, NlpError> {
    let n = st.n;
    let mut heads: Vec<usize> = (0..n)
        .map(|i| {
            if st.heads[i] >= 0 {
                st.heads[i] as usize
            } else {
                i
            }
        })
        .collect();
    let mut deps: Vec<String> = (0..n)
        .map(|i| {
            if st.heads[i] >= 0 {
                st.labels[i].clone()
            } else {
                "ROOT".to_owned()
            }
        })
        .collect();
    let (l_edge, r_edge, _) = children_from_heads(&heads);
    for i in 0..n {
        let Some((new_label, head_label)) = deps[i].split_once("||") else {
            continue;
        };
        cancel.check()?;
        let (new_label, head_label) = (new_label.to_owned(), head_label.to_owned());
        let mut queue = vec![heads[i]];
        let mut new_head = heads[i];
        'search: while !queue.is_empty() {
            let mut next = Vec::new();
            for &q in &queue {
                let kids = (l_edge[q]..q)
                    .chain(q + 1..=r_edge[q])
                    .filter(|&c| heads[c] == q);
                for c in kids {
                    if is_space.get(c).copied().unwrap_or(false) || c == i {
                        continue;
                    }
                    if deps[c] == head_label {
                        new_head = c;
                        break 'search;
                    }
                    next.push(c);
                }
            }
            queue = next;
        }
        heads[i] = new_head;
        deps[i] = new_label;
    }
    let (_, _, mut sent_starts) = children_from_heads(&heads);
    if let Some(first) = sent_starts.first_mut() {
        *first = true;
    }
    Ok(Parse {
        heads,
        deps,
        sent_starts,
    })
}
