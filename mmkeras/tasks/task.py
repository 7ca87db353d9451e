import atexit
import contextlib
import json
import math
import os
import shutil
import tempfile
import warnings

import keras
import tensorflow as tf

from mmkeras.config import config_differences, merge
from mmkeras.data.open_task_data import open_task_data
from mmkeras.models import build_from_config
from mmkeras.preprocessing.image_preprocessor import ImagePreprocessor
from mmkeras.preprocessing.subword_tokenizer import SubwordTokenizer
from mmkeras.tasks.run_directory import RunDirectory
from mmkeras.training.best_epoch import BestEpoch
from mmkeras.training.default_optimizer import default_optimizer
from mmkeras.training.epoch_progress import EpochProgress
from mmkeras.training.lora import enable_lora, trainable_parameter_count
from mmkeras.training.precision import resolve_precision
from mmkeras.training.remat import apply_remat
from mmkeras.training.resumable_checkpoint import ResumableCheckpoint
from mmkeras.training.strategy import get_strategy, is_chief, per_replica_batch_size
from mmkeras.training.tower_pretraining import pretrain_image_tower

BEST_WEIGHTS = "best.weights.h5"  # the weights of the best epoch by `train.monitor`
BEST_EPOCH_FILE = "best_epoch.json"  # which epoch that is, and whether training stopped early
TOWER_PRETRAINING_FILE = "tower_pretraining.json"  # `train.tower_pretraining_steps`: steps, time, accuracies
# Evaluation reads its examples in chunks of about this many bytes of float32 pixels and predicts
# each chunk in one `predict` call: one call per batch costs more than the batch itself.
EVALUATION_CHUNK_BYTES = 64 << 20


def does_not_apply(config, section, field, use, why):
    """Sets `config[section][field]` to `use` in place, printing which setting of a preset does not apply to
    the data at hand and why (a Shapes preset on other records keeps the rest of its recipe)."""
    print(f"mmkeras: `{section}.{field}`={config[section][field]} does not apply here: {why.rstrip('.')}; "
          f"using {use}.")
    config[section][field] = use


class Task:
    """What `mmkeras train` runs: data, model, fit, evaluation, export.

    The base class owns everything the three families share: the records
    (`self.data`, a `mmkeras.data.TaskData` from `data.dataset`: Shapes or any
    real source, read the same way), the image preprocessor and the tokenizer
    trained on the training texts, the strategy and precision policy, the run
    directory, the optimizer, the callbacks (progress bar, TensorBoard,
    periodic backups for resume after a kill) and saving. Each family
    (`MatchingTask`, `CaptioningTask`, `FusionTask`) maps the records to its
    model's inputs (`epoch_dataset`, `steps_per_epoch`) and evaluates.

    Resuming: checkpoints (`ResumableCheckpoint`) record how many batches were
    consumed; on restart the same command restores the newest good checkpoint,
    rebuilds the data stream of the interrupted epoch (each epoch's order is a
    pure function of the seed and the epoch number) and skips the batches
    already trained on, so a killed run continues exactly where it stopped.

    The run directory: one process trains in it at a time (`RunDirectory.lock`,
    held by the chief for the whole of `run` or `train`), and a run resumes only
    with the config in its `config.json`, apart from `config.RESUMABLE_FIELDS`
    (`train.epochs`, to train longer, and how the steps execute); `run(overwrite=True)`
    (`mmkeras train --overwrite`) starts afresh. `history.json` holds every
    epoch of the run, across resumes.

    Args:
        config: a resolved, validated run config (`mmkeras.zoo.config(...)`).
        output_dir: the run directory.

    Example:

    ```python
    from mmkeras import zoo
    from mmkeras.tasks import task_for_config
    task = task_for_config(zoo.config("shapes-clip-tiny"), "runs/clip")
    metrics = task.run()
    ```
    """

    family = None  # "matching", "captioning" or "fusion": which records-to-inputs mapping and evaluation

    # The `data.<field>` options for several texts per image in one step that this task honours
    # (`captions_per_image`: Shapes captioning; `texts_per_image`: Shapes fusion).
    per_image_fields = ()

    # Appended to the names of the evaluation's files (`metrics{suffix}.json`, `samples{suffix}.json`):
    # `mmkeras eval --set` evaluates another way without overwriting what the training run wrote.
    evaluation_suffix = ""

    def __init__(self, config, output_dir):
        self.config = config
        self.model = None  # the trained model, once `run` has trained it
        train = config["train"]
        if config.get("pretrained") and not train["init"]:
            raise ValueError(
                f"The preset {config.get('name')!r} fine-tunes the pretrained checkpoint {config['pretrained']}: "
                f"fetch and import it first (`mmkeras info {config.get('name')}` says how), then pass "
                "`--init RUN` (the import's run directory)."
            )
        if train["run_eagerly"] and train["jit_compile"]:
            raise ValueError(
                "`train.run_eagerly` and `train.jit_compile` are both true: an eager train step runs op by "
                "op and is never XLA-compiled. Set `train.jit_compile` to false (`--no-jit`)."
            )
        keras.utils.set_random_seed(train["seed"])
        if train["deterministic"]:
            tf.config.experimental.enable_op_determinism()
        # Grappler rewrites each new graph on its first run: seconds per train, predict
        # or serving function, repaid only over many steps (off for smoke runs).
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not train["graph_optimization"]})
        self.strategy = get_strategy(train["strategy"], train["tpu"])
        # "auto": bf16 where the device has bf16 units, with the compile setting fastest there.
        self.precision, self.jit_compile, self.precision_reason = resolve_precision(
            train["precision"], train["jit_compile"], self.strategy)
        keras.config.set_dtype_policy(self.precision)
        self.per_replica_batch = per_replica_batch_size(train["global_batch_size"], self.strategy)
        # Multi-worker: every worker runs the same saves, only the chief's files
        # are kept. The others write to a scratch directory (removed at exit) and
        # restore from the chief's checkpoints in `output_dir`.
        self.output_dir = str(output_dir)
        self.is_chief = is_chief(self.strategy)
        self._holding = False  # whether this task holds the run directory's lock
        self.shared_run_dir = RunDirectory(output_dir)
        if self.is_chief:
            self.run_dir = self.shared_run_dir
        else:
            self.run_dir = RunDirectory(_worker_scratch_directory(self.strategy))
            tokenizer = self.shared_run_dir.file("tokenizer.json")  # written atomically by the chief
            if tf.io.gfile.exists(tokenizer):
                tf.io.gfile.copy(tokenizer, self.run_dir.file("tokenizer.json"), overwrite=True)
        data = config["data"]
        self.data = open_task_data(config, self.run_dir, self.family)
        for field, family in (("captions_per_image", "captioning"), ("texts_per_image", "fusion")):
            several = field in self.per_image_fields and self.data.several_texts_per_image
            if data.get(field, 1) != 1 and not several:
                raise ValueError(
                    f"`data.{field}` must be 1 for {type(self).__name__} on {data['dataset']!r} data: only the "
                    f"{family} task on records that hold several texts (Shapes) trains on several per image."
                )
        if train["tower_pretraining_steps"] and not self.data.cell_classes:
            does_not_apply(config, "train", "tower_pretraining_steps", 0, self.data.missing_cell_attributes())
        self.preprocessor = ImagePreprocessor(image_size=data["image_size"], resize="pad", max_pixels=data["max_pixels"])
        self._tokenizer = None
        self._stored_init = None  # the loaded `train.init` model, kept from the task's creation to the build
        self.use_init_preprocessing()

    # --- to implement -----------------------------------------------------
    def epoch_dataset(self, epoch, split="train"):
        """The batched model inputs of one epoch of `split` (`epoch`: an int or a scalar int64 tensor).

        Its order must depend only on the config's seed and `epoch`, and its
        batches must have static shapes (`drop_remainder=True`).
        """
        raise NotImplementedError

    @property
    def steps_per_epoch(self):
        raise NotImplementedError

    def compile_arguments(self):
        """Extra `compile` arguments (loss, metrics) for families whose model needs them."""
        return {}

    def evaluate(self, model):
        """Returns a JSON-serialisable dict of metrics on the held-out split."""
        raise NotImplementedError

    # --- shared -----------------------------------------------------------
    # Tokens per text beyond `data.sequence_length` (captioning needs one more, for the teacher-forcing shift).
    extra_tokens = 0

    @property
    def tokenizer(self):
        """The WordPiece tokenizer trained on the training texts (`data.tokenizer_corpus()`) on first use and
        saved as `tokenizer.json`, so `mmkeras eval` and a resumed run reuse the very same vocabulary (or
        the init model's or loaded model's own, see `use_preprocessing_of`)."""
        if self._tokenizer is None:
            path = self.run_dir.file("tokenizer.json")
            if tf.io.gfile.exists(path):
                with tf.io.gfile.GFile(path) as f:
                    self._tokenizer = SubwordTokenizer.from_config(json.load(f))
            else:
                data = self.config["data"]
                self.data.prepare()
                self._tokenizer = SubwordTokenizer.train(
                    self.data.tokenizer_corpus(),
                    vocabulary_size=data["vocabulary_size"],
                    sequence_length=data["sequence_length"] + self.extra_tokens,
                )
                self.run_dir.write_json("tokenizer.json", self._tokenizer.get_config())
        return self._tokenizer

    def model_config(self):
        """The config the model is built from: the precision chosen (`train.precision="auto"` resolved) and
        the text tower's vocabulary, the trained tokenizer's (at most `data.vocabulary_size`)."""
        sizes = {"train": {"precision": self.precision}}
        if self.config.get("text_encoder"):
            sizes["data"] = {"vocabulary_size": self.tokenizer.vocabulary_size()}
        return merge(self.config, sizes)

    def batch_size(self, split="train"):
        """`train.global_batch_size`, or for "val" the data's validation batch (`TaskData.validation_batch_size`)."""
        batch = self.config["train"]["global_batch_size"]
        if split == "train":
            return batch
        return self.data.validation_batch_size(batch, self.strategy.num_replicas_in_sync)

    def evaluation_chunk(self):
        """Examples read and predicted at once in evaluation: a multiple of `eval.batch_size`
        holding about `EVALUATION_CHUNK_BYTES` of float32 images (at least one batch)."""
        batch = self.config["eval"]["batch_size"]
        size = self.preprocessor.image_size  # the model's own, where it brings its preprocessing
        height, width = (size, size) if isinstance(size, int) else size
        return batch * max(1, EVALUATION_CHUNK_BYTES // (batch * 4 * 3 * height * width))

    def prepare(self, show_progress=True):
        """Makes the data ready (a source is converted on first use); `prepared` then sees it."""
        self.data.prepare(show_progress)
        self.prepared()

    def prepared(self):
        """Hook called once the data is ready (the fusion task sets its heads from it)."""

    def model_preprocessor(self):
        """The `MultimodalPreprocessor` the model carries: the task's tokenizer and image converter."""
        from mmkeras.preprocessing.multimodal_preprocessor import MultimodalPreprocessor

        needs_text = self.config["task"] == "captioning" or bool(self.config.get("text_encoder"))
        return MultimodalPreprocessor(
            tokenizer=self.tokenizer if needs_text else None,
            image_converter=self.preprocessor if self.config.get("image_encoder") else None,
        )

    def build_model(self):
        """The untrained model, carrying its preprocessor (saved in `model.keras`, used by the export);
        with `train.init`, the family's model on the init run's towers (`build_from_init`); with
        `train.lora_rank`, the towers' and decoder's projections adapted with LoRA, the rest of them frozen
        (`mmkeras.training.lora`); with `train.remat`, every Transformer block rematerialised."""
        init = self.init_model()
        if init is not None:
            model = self.build_from_init(init)
        else:
            model = build_from_config(self.model_config(), preprocessor=self.model_preprocessor())
        train = self.config["train"]
        if train["remat"]:
            blocks = apply_remat(model)
            print(f"mmkeras: {len(blocks)} Transformer blocks recompute their activations in the backward pass "
                  "(`train.remat`).")
        if train["lora_rank"]:
            count = enable_lora(model, train["lora_rank"], train["lora_alpha"], train["lora_targets"])
            trainable, total = trainable_parameter_count(model)
            print(f"mmkeras: LoRA of rank {train['lora_rank']} on {count} {' and '.join(train['lora_targets'])} "
                  f"projections: {trainable:,} of {total:,} parameters train ({100 * trainable / total:.2f}%).")
        return model

    def init_uses_tokenizer(self, init):
        """Whether the data is read with the init model's tokenizer: where its text tower is reused (a
        captioner's decoder is not: a new decoder learns the task's own vocabulary)."""
        return getattr(init, "text_encoder", None) is not None

    def build_from_init(self, init):
        """The family's model starting from `init`, the model of `train.init` (see `init_model`)."""
        raise NotImplementedError

    def init_model(self, fresh=True):
        """The model of the run directory `train.init` (`mmkeras import` or an earlier run), or None.

        With `fresh`, it is rebuilt from its config under this run's precision policy (and, called
        in the strategy's scope, with its variables placed by the strategy), with the stored weights.
        The file is read once: the stored model read for the preprocessing (`fresh=False`, when the task
        is made) is kept until the fresh copy is built from it, then let go.
        """
        from mmkeras.encoders.tf_hub_layer import allow_saved_models

        directory = self.config["train"]["init"]
        if not directory:
            return None
        stored = self._stored_init
        if stored is None:
            path = os.path.join(str(directory), "model.keras")
            if not tf.io.gfile.exists(path):
                raise ValueError(
                    f"`train.init` {directory!r} holds no model.keras: give a run directory written by "
                    "`mmkeras import` or `mmkeras train`."
                )
            with allow_saved_models(local_saved_models(self.config)):
                stored = keras.saving.load_model(path, compile=False)
        if not fresh:
            self._stored_init = stored
            return stored
        self._stored_init = None
        model = type(stored).from_config(stored.get_config())
        model.set_weights(stored.get_weights())
        return model

    def use_init_preprocessing(self):
        """Reads the data with the init model's image converter (and tokenizer, `init_uses_tokenizer`)."""
        if not self.config["train"]["init"]:
            return
        init = self.init_model(fresh=False)
        uses_tokenizer = self.init_uses_tokenizer(init)
        needed = ("image_converter", "tokenizer") if uses_tokenizer else ("image_converter",)
        for part in needed:
            if getattr(getattr(init, "preprocessor", None), part, None) is None:
                raise ValueError(f"`train.init` {self.config['train']['init']!r}: its model has no {part}.")
        self.use_preprocessing_of(init, tokenizer=uses_tokenizer)

    def export_options(self):
        """Extra `export_model` arguments (the captioner's decoding settings)."""
        return {}

    def export(self, model, path):
        """Writes the serving SavedModel (`mmkeras.export.export_model`)."""
        from mmkeras.export.export_model import export_model

        export_model(model, path, **self.export_options())

    def compile_model(self, model, total_steps):
        train = self.config["train"]
        optimizer = default_optimizer(
            total_steps,
            learning_rate=train["learning_rate"],
            weight_decay=train["weight_decay"],
            warmup_fraction=train["warmup_fraction"],
            accumulate=train["accumulate"],
        )
        if self.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(
            optimizer=optimizer,
            jit_compile=self.jit_compile,
            steps_per_execution=self.steps_per_execution(),
            **self.compile_arguments(),
        )

    def steps_per_execution(self):
        """`train.steps_per_execution`, except 1 under `MultiWorkerMirroredStrategy`.

        Keras' multi-step train function (TF backend) reads each next batch inside a `tf.cond`
        of its `tf.while_loop`, and a multi-worker iterator agrees on "is there a next batch"
        with a collective op, which TensorFlow cannot run there ("You must feed a value for
        placeholder tensor ..."). One step per call is what works; `train` says so.
        """
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return 1
        return self.config["train"]["steps_per_execution"]

    def with_static_batch(self, dataset, batch=None):
        """`dataset` with every unknown leading dimension set to `batch` (default `train.global_batch_size`).

        Ops such as the tokenizer lose the static batch size of their input;
        XLA (and so TPUs) needs every batch fully shaped. Leading dimensions
        that are already known (e.g. `[B * K]` caption rows) are kept.
        """
        batch = batch or self.config["train"]["global_batch_size"]

        def fix_one(t):
            return t if t.shape[0] is not None else tf.ensure_shape(t, [batch] + t.shape[1:].as_list())

        def fix(*elements):
            structure = elements if len(elements) > 1 else elements[0]
            return tf.nest.map_structure(fix_one, structure)

        return dataset.map(fix)

    def training_stream(self, first_epoch, skip_batches, end_epoch=None):
        """Epochs `first_epoch..end_epoch-1` (default: `train.epochs`) back to back, minus the first
        `skip_batches` (what `train` feeds each epoch's `fit`, as one stream)."""
        end_epoch = self.config["train"]["epochs"] if end_epoch is None else end_epoch
        stream = None
        for epoch in range(int(first_epoch), int(end_epoch)):
            dataset = self.epoch_dataset(tf.constant(epoch, tf.int64))
            stream = dataset if stream is None else stream.concatenate(dataset)
        return stream.skip(skip_batches).prefetch(tf.data.AUTOTUNE)

    def has_validation_split(self):
        """Whether the data has a validation split of at least one batch."""
        return self.batch_size("val") > 0

    def validation_data(self):
        """The validation split in the training data's form, evaluated after every epoch, or None.

        None when `train.validate` is false or the split holds less than one full batch.
        """
        if not self.config["train"]["validate"] or not self.has_validation_split():
            return None
        dataset = self.epoch_dataset(tf.constant(0, tf.int64), split="val")
        return None if int(dataset.cardinality()) == 0 else dataset.prefetch(tf.data.AUTOTUNE)

    @contextlib.contextmanager
    def holding_run(self):
        """Holds the run directory's lock (chief only; re-entrant within this task)."""
        if self._holding or not self.is_chief:
            yield
            return
        with self.shared_run_dir.lock():
            self._holding = True
            try:
                yield
            finally:
                self._holding = False

    def check_resumable(self):
        """Raises a ValueError if the run directory holds a run with another config.

        Only `config.RESUMABLE_FIELDS` may differ from the stored `config.json`.
        """
        path = self.shared_run_dir.file("config.json")
        if not self.is_chief or not tf.io.gfile.exists(path):
            return
        differences = config_differences(self.shared_run_dir.read_json("config.json"), self.config)
        if differences:
            raise ValueError(
                f"The run directory {self.output_dir!r} holds a run with another config (it differs in "
                f"{', '.join(differences)}): resume it with its own config, choose another `--output`, "
                "or pass `--overwrite` to start afresh."
            )

    def remove_previous_run(self):
        """Removes what an earlier run wrote (its config, checkpoints, model, best weights, tokenizer, history,
        metrics, report, logs and export); converted data (`data/`) is kept. Call it holding the run (`holding_run`)."""
        for name in ("checkpoints", "logs", "export"):
            if tf.io.gfile.exists(self.run_dir.file(name)):
                tf.io.gfile.rmtree(self.run_dir.file(name))
        for pattern in ("*.json", "*.keras", "*.weights.h5", "*.html"):
            for path in tf.io.gfile.glob(self.run_dir.file(pattern)):
                tf.io.gfile.remove(path)
        self.data.remove_stale()

    def train(self, verbose="auto"):
        """Makes the data ready and prints its summary, builds the model, fits (resuming if a checkpoint
        exists), saves `model.keras`."""
        self.prepare(show_progress=verbose != 0)
        summary = self.data.summary()
        if summary:
            print(f"mmkeras: {summary}.", flush=True)
        with self.holding_run():
            self.check_resumable()
            return self._train(verbose)

    def _train(self, verbose):
        train = self.config["train"]
        self.run_dir.write_json("config.json", self.config)
        steps, epochs = self.steps_per_epoch, train["epochs"]
        checkpoint = ResumableCheckpoint(
            self.shared_run_dir.checkpoints,
            every_n_steps=train["checkpoint_every"],
            keep=train["keep_checkpoints"],
            write_directory=self.run_dir.checkpoints,
        )
        with self.strategy.scope():
            model = self.build_model()
            self.compile_model(model, total_steps=max(epochs * steps, 1))
            done = checkpoint.restore(model)
        if done:
            print(f"mmkeras: resuming from step {done} ({self.run_dir.checkpoints}).")
        elif train["tower_pretraining_steps"]:
            self.pretrain_tower(model, verbose)
        history, new_losses = self._stored_history(), []
        validation = self.validation_data()
        best = None
        if validation is not None:
            best = BestEpoch(
                train["monitor"], train["early_stopping_patience"], history=history,
                save=lambda model: self.run_dir.save_weights(model, BEST_WEIGHTS),
            )
        if verbose:
            print(f"mmkeras: precision {self.precision}, {'with' if self.jit_compile else 'without'} XLA "
                  f"({'auto: ' if train['precision'] == 'auto' else ''}{self.precision_reason}).")
            if self.steps_per_execution() != train["steps_per_execution"]:
                print(f"mmkeras: one step per call instead of `train.steps_per_execution`="
                      f"{train['steps_per_execution']}: Keras' multi-step loop cannot run under "
                      "MultiWorkerMirroredStrategy.")
            print(f"mmkeras: {epochs} epoch(s) of {steps} steps (batch {train['global_batch_size']}); "
                  + ("validation on the 'val' split after every epoch, best epoch by "
                     f"{train['monitor']}" if best else "no validation (`train.validate` off or no full "
                     "batch of validation data)") + ".")

        def record_epoch(epoch, logs):
            # Indexed by epoch: a resumed epoch replaces what the interrupted run recorded from there on.
            if checkpoint.saw_non_finite_loss:
                return
            for key, value in (logs or {}).items():
                values = history.setdefault(key, [])
                values.extend([None] * (epoch - len(values)))
                values[epoch:] = [float(value)]
            values = history.setdefault("steps", [])  # the steps trained by the end of each epoch
            values.extend([None] * (epoch - len(values)))
            values[epoch:] = [int(checkpoint.step.numpy())]
            new_losses.append(float((logs or {}).get("loss", 0.0)))
            self.run_dir.write_json("history.json", history)

        callbacks = [
            checkpoint,
            keras.callbacks.TensorBoard(self.run_dir.logs, update_freq="epoch"),
            keras.callbacks.TerminateOnNaN(),
            EpochProgress(epochs),
            *([best] if best else []),
            keras.callbacks.LambdaCallback(on_epoch_end=record_epoch),  # last: sees what the others add
        ]
        epoch, offset = divmod(done, steps)
        # Op by op: tracing a train step costs seconds, more than a handful of eager steps.
        compiled_run_eagerly, model.run_eagerly = model.run_eagerly, train["run_eagerly"]
        try:
            # One `fit` per epoch, fed exactly that epoch's batches (after a kill, the ones not yet
            # trained on): Keras runs `steps_per_execution` steps per call, and a chunk must never
            # run on into the next epoch's batches, so every epoch ends where its data ends.
            while epoch < epochs and not (best and best.stopped) and not getattr(model, "stop_training", False):
                checkpoint.stop_at = (epoch + 1) * steps
                data = self.epoch_dataset(tf.constant(epoch, tf.int64)).skip(offset).prefetch(tf.data.AUTOTUNE)
                with _multi_worker_fit_context(model, self.strategy), warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "Your input ran out of data", UserWarning)
                    model.fit(
                        data,
                        initial_epoch=epoch,
                        epochs=epoch + 1,
                        steps_per_epoch=steps - offset,
                        validation_data=validation,
                        shuffle=False,  # each epoch is in its seeded order; Keras cannot reorder it
                        callbacks=callbacks,
                        verbose=verbose,
                    )
                epoch, offset = epoch + 1, 0
        finally:
            model.run_eagerly = compiled_run_eagerly  # evaluation and prediction run as compiled (traced)
        if checkpoint.saw_non_finite_loss or not all(math.isfinite(v) for v in new_losses):
            last = tf.train.latest_checkpoint(self.shared_run_dir.checkpoints)
            kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written before it"
            raise FloatingPointError(
                f"Training diverged: the loss became NaN or infinite; {kept}. Lower `train.learning_rate` "
                "and start afresh (`--overwrite`)."
            )
        if best is not None:
            self.run_dir.write_json(BEST_EPOCH_FILE, self._best_epoch_summary(best, model))
        self.run_dir.write_json("history.json", history)
        self.run_dir.save_model(model)
        return model

    def pretrain_tower(self, model, verbose):
        """`train.tower_pretraining_steps`: before the family's training, the model's image tower learns
        what each grid cell holds (`mmkeras.training.tower_pretraining`); writes `tower_pretraining.json`.
        A resumed run skips it: its checkpoint holds the pretrained tower. A tower the model locks
        (`model.freeze_image_encoder`) trains here all the same, then stays locked."""
        train = self.config["train"]
        tower = getattr(model, "image_encoder", None)
        if tower is None:
            raise ValueError(f"`train.tower_pretraining_steps`: the {type(model).__name__} has no image tower.")
        batches = self.data.cell_attribute_batches(self.preprocessor, train["tower_pretraining_batch_size"],
                                                   train["seed"])
        with self.strategy.scope():
            # A dual encoder's tower computes only its pooled vector: a twin with the tokens trains, then hands
            # its weights back.
            trained = tower.rebuild(pooled_only=False) if tower.get_config().get("pooled_only") else tower
            was_trainable, trained.trainable = tower.trainable, True
            result = pretrain_image_tower(
                trained, batches, train["tower_pretraining_steps"], self.data.cell_classes,
                learning_rate=train["tower_pretraining_learning_rate"] or train["learning_rate"],
                schedule=train["tower_pretraining_schedule"], jit_compile=self.jit_compile,
                steps_per_execution=self.steps_per_execution(),
                validation=self.data.cell_attribute_examples(self.preprocessor, "val"),
            )
            tower.trainable = was_trainable
            if trained is not tower:
                tower.set_weights(trained.get_weights())
        self.run_dir.write_json(TOWER_PRETRAINING_FILE, result)
        if verbose:
            scores = ", ".join(f"{k} {v:.3f}" for k, v in result.get("validation", {}).items())
            print(f"mmkeras: image tower pretrained on what each grid cell holds: {result['steps']} steps in "
                  f"{result['seconds']:.0f} s" + (f"; per-cell accuracy on the 'val' split: {scores}" if scores else "")
                  + ".", flush=True)
        return result

    def _best_epoch_summary(self, best, model):
        """Reports the best epoch (and an early stop), restores its weights with `train.restore_best`."""
        train = self.config["train"]
        summary = {"monitor": best.monitor, "best_epoch": best.best_epoch, "best_value": best.best,
                   "stopped_early": best.stopped, "last_epoch": best.last_epoch, "restored": False}
        if best.best_epoch is None:
            return summary
        if best.stopped:
            print(f"mmkeras: stopped early after epoch {best.last_epoch + 1}: {best.monitor} last improved "
                  f"at epoch {best.best_epoch + 1} ({best.best:.4g}).")
        if train["restore_best"] and best.best_epoch != best.last_epoch:
            model.load_weights(self.run_dir.file(BEST_WEIGHTS))
            summary["restored"] = True
            print(f"mmkeras: the saved model has epoch {best.best_epoch + 1}'s weights, the best by {best.monitor}.")
        return summary

    def _stored_history(self):
        """The run's `history.json` so far (`{}` for a new run)."""
        if not tf.io.gfile.exists(self.run_dir.file("history.json")):
            return {}
        return self.run_dir.read_json("history.json")

    def run(self, verbose="auto", evaluate=True, export=True, overwrite=False):
        """Trains, evaluates (writing `metrics.json`) and exports; returns the metrics.

        The trained model stays available as `task.model` (the same weights as
        `model.keras`, without loading it back). The run directory is held
        (`holding_run`) throughout.

        Args:
            verbose: Keras `fit` verbosity.
            evaluate: evaluate on the held-out split (else the metrics are `{}`).
            export: export the SavedModel to `export/`.
            overwrite: first remove what an earlier run wrote in the run
                directory (`remove_previous_run`) and start afresh.
        """
        with self.holding_run():
            if overwrite:
                self.remove_previous_run()
            model = self.model = self.train(verbose=verbose)
            metrics = {}
            if evaluate:
                metrics = self.evaluate(model)
                self.write_evaluation_file("metrics", metrics)
            if export:
                self.export(model, self.run_dir.export)
            self.data.finish(self.run_dir)
            return metrics

    def write_evaluation_file(self, stem, data):
        """Writes an evaluation result `data` to `{stem}{evaluation_suffix}.json` in the run directory."""
        self.run_dir.write_json(f"{stem}{self.evaluation_suffix}.json", data)

    def load_model(self):
        """The run's `model.keras` (the local TF-Hub SavedModels its config names may load with it); the
        task then tokenizes and converts images with the model's own preprocessor (`use_preprocessing_of`)."""
        from mmkeras.encoders.tf_hub_layer import allow_saved_models

        with allow_saved_models(local_saved_models(self.config)):
            model = keras.saving.load_model(self.run_dir.model)
        self.use_preprocessing_of(model)
        return model

    def use_preprocessing_of(self, model, tokenizer=True):
        """Makes the task read data with `model.preprocessor`'s image converter and (with `tokenizer`) its
        tokenizer (an imported checkpoint's own, for instance), where the model has them."""
        preprocessor = getattr(model, "preprocessor", None)
        if preprocessor is None:
            return
        if tokenizer and preprocessor.tokenizer is not None:
            self._tokenizer = preprocessor.tokenizer
        if preprocessor.image_converter is not None:
            self.preprocessor = preprocessor.image_converter

    @staticmethod
    def describe(metrics):
        return json.dumps(metrics, indent=2, sort_keys=True)

    def path(self, name):
        return os.path.join(self.run_dir.path, name)


def init_tower(init, name, directory):
    """The tower `name` ("image_encoder" or "text_encoder") of an init model, giving its token sequence too.

    Args:
        init: the model of `train.init`.
        name: which tower.
        directory: the `train.init` directory (for the error message).
    """
    tower = getattr(init, name, None)
    if tower is None:
        raise ValueError(f"`train.init` {directory!r} holds a {type(init).__name__} without an {name}.")
    # A dual encoder's towers may compute only the pooled vector; fusion and decoders read every token.
    return tower.rebuild(pooled_only=False) if tower.get_config().get("pooled_only") else tower


def local_saved_models(config):
    """The local SavedModel directories a run config's `tf_hub` towers name (URLs and hub names left out).

    These are what the user named for the run, so loading its `model.keras` may load them; any
    other handle stored in the file stays refused (see `mmkeras.encoders.allow_saved_models`).

    Example:

    >>> import tempfile
    >>> tower = tempfile.mkdtemp()
    >>> local_saved_models({"image_encoder": {"type": "tf_hub", "handle": tower},
    ...                     "text_encoder": {"type": "tf_hub", "handle": "https://example.com/bert"}}) == [tower]
    True
    """
    specs = (config.get("image_encoder"), config.get("text_encoder"))
    return [
        spec["handle"]
        for spec in specs
        if spec and spec.get("type") == "tf_hub" and "://" not in str(spec.get("handle", "://"))
        and tf.io.gfile.isdir(spec["handle"])
    ]


def _worker_scratch_directory(strategy):
    """A local temporary directory for a non-chief worker's files, removed at exit."""
    resolver = strategy.cluster_resolver
    path = tempfile.mkdtemp(prefix=f"mmkeras-{resolver.task_type}{resolver.task_id}-")
    atexit.register(shutil.rmtree, path, True)
    return path


@contextlib.contextmanager
def _multi_worker_fit_context(model, strategy):
    """Lets Keras 3 `model.fit` run under `MultiWorkerMirroredStrategy`.

    Two Keras 3.15 (TF backend) steps fail under this strategy (see
    keras-team/keras#20329 and #20585), worked around here for the duration
    of `fit` only; other strategies are left alone:

    - `fit` of a model created in a strategy scope first all-reduces the first
      distributed batch to build the model symbolically, and that reduce
      rejects nested batches such as `{"images", "token_ids"}`. With the
      model's own strategy unset and `fit` run inside `strategy.scope()`,
      Keras takes the same strategy from the scope and builds while tracing
      the train step instead.
    - the per-step logs are reduced with `strategy.reduce("MEAN", value,
      axis=0)`, which fails on scalars. The train and test steps' logs are returned
      with shape `[1]`, so that reduce averages them over all replicas (the
      same logs as under `MirroredStrategy`).
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    saved_strategy = model._distribute_strategy

    def with_rank_1_logs(step):
        def step_with_rank_1_logs(data):
            logs = step(data)
            return {k: tf.reshape(v, [1]) if tf.is_tensor(v) and v.shape.rank == 0 else v for k, v in logs.items()}

        return step_with_rank_1_logs

    model._distribute_strategy = None
    model.train_step, model.test_step = with_rank_1_logs(model.train_step), with_rank_1_logs(model.test_step)
    try:
        with strategy.scope():
            yield
    finally:
        model._distribute_strategy = saved_strategy
        del model.train_step, model.test_step
