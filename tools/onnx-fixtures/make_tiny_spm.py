#!/usr/bin/python3
"""Trains a tiny SentencePiece BPE model (vocab 256, Gemma's special ids pad=0 eos=1 bos=2 unk=3) so that text can
run through the tiny Gemma 2 fixture (vocab 256). Output: tests/GemmaScope.Onnx.Tests/Fixtures/tiny-gemma2/tokenizer.model
Run: /usr/bin/python3 tools/onnx-fixtures/make_tiny_spm.py
"""
import io
import os

import sentencepiece as spm

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures",
                   "tiny-gemma2", "tokenizer.model")
TEXT = """The Eiffel Tower is in Paris. Once upon a time there was a little fox who lived in the forest.
The quick brown fox jumps over the lazy dog. Sparse autoencoders find features in the residual stream of Gemma.
A language model predicts the next token. The cat sat on the mat, and the dog sat on the log.
Paris is the capital of France; Berlin is the capital of Germany; Rome is the capital of Italy.
Scientists study the brain, the stars, the oceans and the history of the world in great detail.
""" * 20

model = io.BytesIO()
spm.SentencePieceTrainer.train(
    sentence_iterator=iter(TEXT.splitlines()), model_writer=model, model_type="bpe", vocab_size=256,
    pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
    byte_fallback=False, character_coverage=1.0, add_dummy_prefix=False, normalization_rule_name="identity",
    split_digits=True, allow_whitespace_only_pieces=True, remove_extra_whitespaces=False)
with open(OUT, "wb") as f:
    f.write(model.getvalue())
sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
print(sp.encode("The Eiffel Tower is in Paris"), sp.get_piece_size())
