"""Kim (2014)'s CNN for sentence classification: tokeniser, vocabulary, data sets, model,
training with cross-validation, prediction with the n-grams the filters fired on.

- ``tokenize``: Kim's ``clean_str`` rules;
- ``vocabulary``: word ids from the training folds only (padding and unknown tokens);
- ``datasets``: MR, TREC, SST-2 and any folder with one text file per class;
- ``model``: the CNN (Embedding → parallel Conv1D branches → max over time → dropout → dense)
  and its constraints (max-norm 3 on the last layer, the padding row kept at zero);
- ``train``: each fold × seed as a resumable unit of a run folder, mean ± std;
- ``predict``: class, probability and the n-grams the max-pooled filters kept;
- ``commands``: ``cnnlab text train`` and ``cnnlab text predict``.
"""
