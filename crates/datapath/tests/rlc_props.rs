//! The run-length codec: round trips, the exact coded size in closed form, and broken streams
//! that decode to errors (never panics).

use proptest::prelude::*;
use rowsim_datapath::rlc::{
    decode, encode, encoded_len, PairCount, RlcDecoder, RlcError, RlcFormat,
};

/// Feature-map-like streams: mostly zeros in runs of any length, some values.
fn sparse() -> impl Strategy<Value = Vec<i16>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(0i16),
            1 => any::<i16>(),
            1 => (1usize..80).prop_map(|_| 0i16),
        ],
        0..400,
    )
    .prop_flat_map(|v| {
        // Splice in a few long zero runs.
        (
            Just(v),
            prop::collection::vec((0usize..400, 0usize..100), 0..3),
        )
    })
    .prop_map(|(mut v, runs)| {
        for (at, len) in runs {
            let at = at.min(v.len());
            v.splice(at..at, std::iter::repeat_n(0, len));
        }
        v
    })
}

fn formats() -> impl Strategy<Value = RlcFormat> {
    prop_oneof![
        Just(RlcFormat::EYERISS),
        (1u32..=8, 1u32..=3)
            .prop_filter_map("pairs must fit", |(r, p)| RlcFormat::new(r, 16, p, 64).ok()),
        Just(RlcFormat::new(2, 16, 1, 19).unwrap()),
    ]
}

/// The coded size by counting, independently of the encoder: each nonzero value takes one
/// pair, plus one (max, 0) pair for every full max+1 zeros before it; a trailing run of z zeros
/// takes ceil(z / (max+1)) pairs; pairs pack `pairs_per_word` to a word, at least one word.
fn closed_form_words(fmt: &RlcFormat, v: &[i16]) -> usize {
    let span = fmt.max_run() as usize + 1;
    let mut pairs = 0;
    let mut zeros = 0;
    for &x in v {
        if x == 0 {
            zeros += 1;
        } else {
            pairs += zeros / span + 1;
            zeros = 0;
        }
    }
    pairs += zeros.div_ceil(span);
    pairs.div_ceil(fmt.pairs_per_word as usize).max(1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn round_trip(v in sparse(), fmt in formats()) {
        let words = encode(&fmt, &v);
        prop_assert_eq!(decode(&fmt, &words, v.len()).unwrap(), v.clone());
        // Only the last word has the flag.
        let flag = 1u64 << (fmt.word_bits - 1);
        prop_assert!(words[..words.len() - 1].iter().all(|w| w & flag == 0));
        prop_assert!(words.last().unwrap() & flag != 0);
    }

    #[test]
    fn coded_size_is_exact(v in sparse(), fmt in formats()) {
        let n = closed_form_words(&fmt, &v);
        prop_assert_eq!(encode(&fmt, &v).len(), n);
        prop_assert_eq!(encoded_len(&fmt, &v), n);
    }

    /// A stream counted as it comes, in runs of any lengths, codes to the words of the whole.
    #[test]
    fn a_stream_counted_in_runs_codes_to_its_size(
        v in sparse(),
        fmt in formats(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(v.len() + 1)).collect();
        at.push(0);
        at.push(v.len());
        at.sort_unstable();
        let mut n = PairCount::new(&fmt);
        for w in at.windows(2) {
            n.push_all(&v[w[0]..w[1]]);
        }
        prop_assert_eq!(n.words(), encoded_len(&fmt, &v));
        prop_assert_eq!(n.words(), encode(&fmt, &v).len());
    }

    #[test]
    fn truncated_streams_are_errors(v in sparse(), cut in any::<prop::sample::Index>()) {
        let fmt = RlcFormat::EYERISS;
        let words = encode(&fmt, &v);
        let keep = cut.index(words.len()); // strictly fewer words
        let err = decode(&fmt, &words[..keep], v.len()).unwrap_err();
        let is_truncated = matches!(err, RlcError::Truncated { words, .. } if words == keep);
        prop_assert!(is_truncated, "{}", err);
    }

    #[test]
    fn arbitrary_words_never_panic(words in prop::collection::vec(any::<u64>(), 0..20), n in 0usize..300, fmt in formats()) {
        let mut d = RlcDecoder::new(fmt, n);
        let mut got = 0usize;
        let mut failed = false;
        for &w in &words {
            if d.push(w, |_| got += 1).is_err() {
                failed = true;
                break;
            }
        }
        prop_assert!(got <= n, "never more values than expected");
        if !failed && d.finish().is_ok() {
            prop_assert_eq!(got, n);
        }
    }
}
