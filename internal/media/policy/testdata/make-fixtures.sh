#!/bin/sh
# Regenerates the H.264 fixtures in this directory (Debian bookworm ffmpeg 5.1 with libx264).
# Every stream is 6 frames of a flat colour with moving text, at the lowest quality (qp 51) with a keyframe
# interval of 5 and x264's SEI removed,
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
enc high444_642x362.h264    642x362   yuv444p high444
enc high422_640x362.h264    640x362   yuv422p high422
