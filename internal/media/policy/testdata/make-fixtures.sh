#!/bin/sh
# Regenerates the H.264 fixtures in this directory (Debian bookworm ffmpeg 5.1 with libx264).
# Every stream is 6 frames of a flat colour with a moving box at the lowest quality (qp 51) with a keyframe interval of 5,
# so each file stays a few KB while holding an IDR, P slices and, where asked, B slices.
set -eu
enc() { # enc OUT SIZE PIXFMT PROFILE [extra ffmpeg args...]
	out=$1 size=$2 pixfmt=$3 profile=$4
	shift 4
	ffmpeg -hide_banner -loglevel error -y -f lavfi -i "color=c=0x3366aa:size=$size:rate=30" -vf "drawtext=text=openstage:x=8*n:y=16:fontsize=40:fontcolor=yellow" -frames:v 6 \
		-pix_fmt "$pixfmt" -c:v libx264 -preset veryslow -profile:v "$profile" -qp 51 -g 5 -bf 0 "$@" \
		-bsf:v filter_units=remove_types=6 -f h264 "$out"
}
enc cb_1280x720.h264        1280x720  yuv420p baseline
enc cb_720x1280.h264        720x1280  yuv420p baseline
enc cb_1920x1080.h264       1920x1080 yuv420p baseline
enc cb_854x480.h264         854x480   yuv420p baseline -x264-params slices=3
enc cb_1366x768.h264        1366x768  yuv420p baseline
enc high_bframes_640x360.h264 640x360 yuv420p high -bf 2 -x264-params b-adapt=0
enc main_interlaced_1920x1080.h264 1920x1080 yuv420p main -flags +ildct+ilme -x264-params tff=1
enc high444_642x361.h264    642x361   yuv444p high444 -x264-params cqm4=4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19:cqm8=8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71
enc high422_640x362.h264    640x362   yuv422p high422 -x264-params cqm=jvt
