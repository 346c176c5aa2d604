"""lbie — language-based image editing (LBIE, CVPR 2018; TIM-GAN, ACM MM 2021), reproduced.

The public names of every module, in the order the layers import each other: the shared helpers, then
the data, the models and the metrics, then the experiments and the figures (``python -m lbie.devtools
imports`` prints the graph and checks that it has no cycle).
"""
from .version import __version__

# helpers shared by every module: presets, device, seeding, provenance, files, the training loop
from .config import PRESETS, PRESET_NAMES, get_preset, resolve_preset
from .utils import (atomic_save_json, checkpoints_dir, get_device, load_json, provenance, results_dir,
                    seed_everything)
from .train import CheckpointError, TrainingDiverged, fit, load_checkpoint

# data
from .data.cosal import (COLORS, COLOR_RGB, SHAPES, VOCAB, CoSaL, coverage_stats, generate_cosal, labels_to_rgb,
                         load_cosal)
from .data.css import CSSData, CSSObject, CSSScene, cell_attributes, cell_code, generate_css, load_css, render_css
from .data.edit_formats import EditPairs, load_codraw_h5, load_timgan_folders, load_tirg_css_npy

# models
from .models.lbie import (LBIE, Decoder, ImageEncoder, RecurrentAttentiveFusion, SentenceEncoder,
                          bilinear_kernel, lbie_loss)
from .models.text_encoder import DEFAULT_TEXT_ENCODER, TextEncoder, TokenFeatures, cached_text_encoder
from .models.timgan import (TIMGAN, VARIANTS, AutoEncoder, EditOutput, PatchDiscriminator, TextAdaptiveRouting,
                            WhereModule, gate_diversity_loss, gt_mask)
from .models.colorization import Colorizer, TextDiscriminator, WordEncoder

# metrics
from .metrics.cosal_iou import ColorIoU, CoSaLShapeIoU, relational_iou
from .metrics.summary import mean_std
from .metrics.retrieval import (FIDScorer, RetrievalAutoEncoder, RetrievalIndex, RetrievalResult, fid_score,
                                rs_at_n, target_rank, to_float, to_uint8, top_k)

# experiments
from .experiments.cosal import (CoSaLRun, caption_oracle, evaluate_predictions, images_from_labels, iterate,
                                forced_step_metrics, load_or_train_cosal, predict_cosal, publish_checkpoint,
                                stop_step_share, train_cosal)
from .experiments.timgan import (EditExplanation, TIMGANRun, css_splits, edit_fidelity, edit_groups, edit_images,
                                 evaluate_edits, explain_edits, load_or_train_timgan, publish_timgan,
                                 retrieval_encoder_name, retrieval_index, rs1_by_edit, timgan_config,
                                 timgan_model_source, train_timgan)
from .experiments.segmentation import (PAPER_TABLE3, SegmentationRun, evaluate_segmentation, language_tokens,
                                       load_or_train_segmentation, predict_segmentation, publish_segmentation,
                                       region_attention, render_segmentation, reproduce_referit_synth,
                                       segmentation_config, segmentation_maps, train_segmentation)
from .experiments.colorization import (PAPER_TABLE4, ColorizationRun, colorization_config, colorize,
                                       evaluate_colorization, flower_splits, load_or_train_colorization,
                                       publish_colorization, recolor, recolor_consistency, render_colorization,
                                       reproduce_flowers_synth, sample_photo, train_colorization)

# figures and tables
from .plotting.cosal import (draw_caption_tree, plot_caption_trees, plot_class_balance, plot_coverage, plot_shapes,
                             sentence_labels, show_cosal_examples)
from .plotting.fusion import (attention_by_kind, plot_attention_by_kind, plot_attention_steps, plot_feature_maps,
                              plot_gumbel_temperatures, plot_stop_maps, plot_stop_step_histogram, plot_stop_steps,
                              region_cells)
from .plotting.cosal_results import plot_iou_by_depth, plot_iou_ceiling, plot_table2, plot_training_curves, table2_frame
from .plotting.css import EDIT_TYPES, edit_types, plot_css_renderer, plot_css_statistics, show_css_examples
from .plotting.timgan import (METHOD_LABELS, gate_usage, plot_gate_usage, plot_gates, plot_loss_terms, plot_masks,
                              plot_routing_tsne, plot_word_attention, show_method_edits, timgan_frame, timgan_gap_frame)
from .plotting.segmentation import (plot_expression_attention, plot_metrics_by_kind, plot_segmentation_curves,
                                    plot_table3, show_referring_examples, table3_frame)
from .plotting.colorization import (colorization_frame, plot_caption_attention, plot_lab_channels, plot_recolorings,
                                    show_colorizations)
from .plotting.report import plot_claims
from .plotting.retrieval import plot_retrieval_queries, show_retrieval_failures
from .experiments.composed_retrieval import TIRGComposer, load_or_train_tirg_composer, train_tirg_composer
from .experiments.results import gate_study_frame
from .experiments.results_files import ResultsError, check_results
from .experiments.deviations import DEVIATIONS
from .experiments.edit_gallery import FAMILIES as GALLERY_FAMILIES
from .experiments.edit_gallery import GalleryCase, gallery_cases, gallery_data, gallery_scenes, score_gallery

# the interactive editor
from .editor import (ColorizationEditor, TIMGANEditor, editor_tabs, gates_html, mask_overlay, png_bytes,
                     time_callback)
