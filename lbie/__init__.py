"""lbie — language-based image editing (LBIE, CVPR 2018; TIM-GAN, ACM MM 2021), reproduced."""
__version__ = "0.1.0"

from .config import PRESETS, PRESET_NAMES, get_preset, resolve_preset
from .utils import (atomic_save_json, checkpoints_dir, get_device, load_json, provenance, results_dir,
                    seed_everything)
from .cosal import (COLORS, COLOR_RGB, SHAPES, VOCAB, CoSaL, coverage_stats, generate_cosal, labels_to_rgb,
                    load_cosal)
from .lbie_model import (LBIE, Decoder, ImageEncoder, RecurrentAttentiveFusion, SentenceEncoder,
                         bilinear_kernel, lbie_loss)
from .metrics import ColorIoU, CoSaLShapeIoU, mean_std
from .train import CheckpointError, TrainingDiverged, fit, load_checkpoint
from .cosal_experiment import (CoSaLRun, caption_oracle, evaluate_predictions, images_from_labels, iterate,
                               forced_step_metrics, load_or_train_cosal, predict_cosal, publish_checkpoint, stop_step_share,
                               train_cosal)
from .plotting import (attention_by_kind, draw_caption_tree, plot_attention_by_kind, plot_attention_steps,
                       plot_caption_trees, plot_class_balance, plot_coverage, plot_feature_maps,
                       plot_gumbel_temperatures, plot_iou_by_depth, plot_iou_ceiling, plot_shapes, plot_stop_maps,
                       plot_stop_step_histogram, plot_stop_steps, plot_table2, plot_training_curves, region_cells,
                       sentence_labels, show_cosal_examples, table2_frame, gate_study_frame,
                       EDIT_TYPES, edit_types, gate_usage, plot_css_renderer, plot_css_statistics, plot_gate_usage,
                       plot_gates, plot_loss_terms, plot_masks, plot_routing_tsne, plot_word_attention,
                       show_css_examples, timgan_frame)
from .css import CSSData, CSSObject, CSSScene, generate_css, load_css, render_css
from .edit_formats import EditPairs, load_codraw_h5, load_timgan_folders, load_tirg_css_npy
from .text_encoder import DEFAULT_TEXT_ENCODER, TextEncoder, TokenFeatures, cached_text_encoder
from .timgan import (TIMGAN, VARIANTS, AutoEncoder, EditOutput, PatchDiscriminator, TextAdaptiveRouting, WhereModule,
                     gate_diversity_loss, gt_mask)
from .retrieval import (FIDScorer, RetrievalAutoEncoder, RetrievalIndex, RetrievalResult, fid_score, rs_at_n,
                        target_rank, to_float, to_uint8, top_k)
from .timgan_experiment import (EditExplanation, TIMGANRun, css_splits, edit_fidelity, edit_images, evaluate_edits,
                                explain_edits, load_or_train_timgan, publish_timgan, retrieval_encoder_name, retrieval_index,
                                timgan_config, train_timgan)
from .composed_retrieval import TIRGComposer, load_or_train_tirg_composer, train_tirg_composer
from .plotting import plot_retrieval_queries, show_retrieval_failures
from .segmentation_experiment import (PAPER_TABLE3, SegmentationRun, evaluate_segmentation, language_tokens,
                                      load_or_train_segmentation, predict_segmentation, publish_segmentation,
                                      region_attention, render_segmentation, reproduce_referit_synth,
                                      segmentation_config, segmentation_maps, train_segmentation)
from .plotting import (plot_expression_attention, plot_metrics_by_kind, plot_segmentation_curves, plot_table3,
                       show_referring_examples, table3_frame)
from .colorization_model import Colorizer, TextDiscriminator, WordEncoder
from .colorization_experiment import (PAPER_TABLE4, ColorizationRun, colorization_config, colorize,
                                      evaluate_colorization, flower_splits, load_or_train_colorization,
                                      publish_colorization, recolor, recolor_consistency, render_colorization,
                                      reproduce_flowers_synth, sample_photo, train_colorization)
from .plotting import (colorization_frame, plot_caption_attention, plot_lab_channels, plot_recolorings,
                       show_colorizations)
