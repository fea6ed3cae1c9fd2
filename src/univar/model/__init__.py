"""UniVaR value encoder: multi-view contrastive training (set and concat views), saving and loading.

- :mod:`~univar.model.univar`: the :class:`~univar.model.univar.UniVaR` model (load, encode QAs, views and LLMs);
- :mod:`~univar.model.config`: every training setting (:class:`~univar.model.config.TrainConfig`), torch-free;
- :mod:`~univar.model.train`: the training loop, :func:`~univar.model.train.train` (``univar.train``);
- :mod:`~univar.model.runs`: where a run writes and whether it may; :mod:`~univar.model.io`: the files;
- the two modes (:mod:`~univar.model.set_mode`, :mod:`~univar.model.concat_mode`), their heads, views and loss.

Nothing is imported here, so that reading the settings (``univar.model.config``) never loads torch.
"""
