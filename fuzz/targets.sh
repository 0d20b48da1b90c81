# fuzz/targets.sh: the fuzz targets and their per-target settings, sourced
# by fuzz/build.sh, tests/fuzz_test.sh and fuzz/campaign.sh.

FUZZ_TARGETS="model model_crc image_stb image_jpeg preprocess npy probe pca index textfiles args"

# Extra compiler flags and libraries of one target.
fuzz_target_flags() {
  case "$1" in
    # stb decodes every image in image_stb and what is not JPEG by its first
    # three bytes in preprocess: fuzz/ubsan_ignore.txt says why it is there.
    image_stb) echo "-UFEATX_WITH_LIBJPEG -fsanitize-ignorelist=fuzz/ubsan_ignore.txt" ;;
    preprocess) echo "-DFEATX_WITH_LIBJPEG -ljpeg -fsanitize-ignorelist=fuzz/ubsan_ignore.txt" ;;
    image_jpeg) echo "-DFEATX_WITH_LIBJPEG -ljpeg" ;;
    probe | pca) echo "-I/usr/include/eigen3" ;;
  esac
}

# -max_len: room for the seeds' sizes (fuzz/make_corpus.py keeps them under it).
fuzz_max_len() {
  case "$1" in
    model | model_crc) echo 65536 ;;
    image_stb | image_jpeg | preprocess) echo 32768 ;;
    npy | probe | pca | index) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

# The seed directory of a target inside the build folder (make_corpus.py);
# the regression inputs live in fuzz/regressions/<target>/.
fuzz_seed_dir() { echo "$1/seeds/$2"; }

# Dictionary, when the target has one.
fuzz_dict() {
  case "$1" in
    image_stb | image_jpeg | preprocess) echo "fuzz/dict/image.dict" ;;
    npy) echo "fuzz/dict/npy.dict" ;;
    args | textfiles) echo "fuzz/dict/args.dict" ;;
    model | model_crc) echo "fuzz/dict/model.dict" ;;
  esac
}
